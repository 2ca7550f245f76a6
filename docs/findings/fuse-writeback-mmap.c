/* Data a punch, a zero range or a copy replaced must not come back. Each round: page 0
 * of the file is written with the round's marker in word 0 (page 1 with the marker's
 * complement) and made durable (fsync); then a thread stores to
 * word 256 of page 0 through a shared mapping and writes the page back (msync MS_SYNC),
 * in a loop, while the main thread punches page 0 (FALLOC_FL_PUNCH_HOLE; with --zero
 * FALLOC_FL_ZERO_RANGE; with --copy it copies page 1 over page 0 with copy_file_range).
 * After the operation has returned and the thread has stopped, word 0 must read 0 (the
 * complement after a copy): the marker was there before the operation began and nothing
 * stores it again. A round is stale when pread reads the marker; it is then read again
 * after dropping the file's cache (POSIX_FADV_DONTNEED), to tell a stale cached page
 * from the marker written back into the file. --no-faults: the thread does not run (the
 * control).
 *
 *   fuse-writeback-mmap FILE ROUNDS [--zero | --copy] [--no-faults]
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096
#define PAGES 2

static volatile uint64_t *map;
static int fd;
static atomic_int stop;

static void *storer(void *arg)
{
	uint64_t v = 1;
	(void)arg;
	while (!atomic_load(&stop)) {
		map[256] = v++;
		sync_file_range(fd, 0, PAGE, SYNC_FILE_RANGE_WRITE);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int zero = 0, copy = 0, faults = 1;
	if (argc < 3) {
		fprintf(stderr, "usage: %s FILE ROUNDS [--zero | --copy] [--no-faults]\n", argv[0]);
		return 2;
	}
	for (int i = 3; i < argc; i++) {
		if (!strcmp(argv[i], "--zero"))
			zero = 1;
		else if (!strcmp(argv[i], "--copy"))
			copy = 1;
		else if (!strcmp(argv[i], "--no-faults"))
			faults = 0;
		else {
			fprintf(stderr, "unknown argument %s\n", argv[i]);
			return 2;
		}
	}
	int rounds = atoi(argv[2]);
	int mode = (zero ? FALLOC_FL_ZERO_RANGE : FALLOC_FL_PUNCH_HOLE) | FALLOC_FL_KEEP_SIZE;
	fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
	uint64_t page[PAGE / 8];
	if (fd < 0 || ftruncate(fd, PAGE * PAGES)) {
		perror(argv[1]);
		return 2;
	}
	map = mmap(NULL, PAGE * PAGES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	int stale = 0, in_file = 0, printed = 0;
	for (int r = 1; r <= rounds; r++) {
		uint64_t marker = 0x5eed000000000000ull | (uint64_t)r;
		memset(page, 0x55, sizeof(page));
		page[0] = marker;
		if (pwrite(fd, page, PAGE, 0) != PAGE) {
			perror("pwrite");
			return 2;
		}
		page[0] = ~marker;
		if (pwrite(fd, page, PAGE, PAGE) != PAGE || fsync(fd)) {
			perror("pwrite");
			return 2;
		}
		pthread_t t;
		atomic_store(&stop, 0);
		if (faults && pthread_create(&t, NULL, storer, NULL))
			return 2;
		if (copy) {
			loff_t in = PAGE, out = 0;
			if (copy_file_range(fd, &in, fd, &out, PAGE, 0) != PAGE) {
				perror("copy_file_range");
				return 2;
			}
		} else if (fallocate(fd, mode, 0, PAGE)) {
			perror("fallocate");
			return 2;
		}
		atomic_store(&stop, 1);
		if (faults)
			pthread_join(t, NULL);
		uint64_t word;
		if (pread(fd, &word, 8, 0) != 8)
			return 2;
		if (word == marker) {
			stale++;
			posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
			uint64_t again;
			if (pread(fd, &again, 8, 0) != 8)
				return 2;
			in_file += again == marker;
			if (printed++ < 5)
				printf("round %d: word 0 reads the marker %#llx after the operation; after "
				       "dropping the cache: %#llx\n", r, (unsigned long long)marker,
				       (unsigned long long)again);
		}
	}
	printf("%s%s: %d of %d rounds stale (%d with the marker back in the file)\n",
	       copy ? "copy" : zero ? "zero range" : "punch", faults ? "" : " (no faults)", stale,
	       rounds, in_file);
	return stale ? 1 : 0;
}
