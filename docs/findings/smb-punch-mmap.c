/* A store through a shared mapping after a punch has returned must reach the file. Each
 * round: a thread stores to word 1 of page 0 in a loop (write faults while the punch
 * runs), the main thread punches page 0 (FALLOC_FL_PUNCH_HOLE, or FALLOC_FL_ZERO_RANGE
 * with --zero), stops the thread, then stores the round's marker to word 0 through the
 * mapping and reads word 0 back with pread. A round is lost when pread does not read the
 * marker; the page is then written back (msync) and word 0 read again, and a store still
 * missing is lost: the mapping holds a page that is no longer the file's. --no-faults:
 * the thread does not run (the control).
 *
 *   smb-punch-mmap FILE ROUNDS [--zero] [--no-faults]
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
#define PAGES 4

static volatile uint64_t *map;
static atomic_int stop;

static void *storer(void *arg)
{
	uint64_t v = 1;
	(void)arg;
	while (!atomic_load(&stop))
		map[1] = v++;
	return NULL;
}

int main(int argc, char **argv)
{
	int zero = 0, faults = 1;
	if (argc < 3) {
		fprintf(stderr, "usage: %s FILE ROUNDS [--zero] [--no-faults]\n", argv[0]);
		return 2;
	}
	for (int i = 3; i < argc; i++) {
		if (!strcmp(argv[i], "--zero"))
			zero = 1;
		else if (!strcmp(argv[i], "--no-faults"))
			faults = 0;
		else {
			fprintf(stderr, "unknown argument %s\n", argv[i]);
			return 2;
		}
	}
	int rounds = atoi(argv[2]);
	int mode = (zero ? FALLOC_FL_ZERO_RANGE : FALLOC_FL_PUNCH_HOLE) | FALLOC_FL_KEEP_SIZE;
	int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
	char buf[PAGE * PAGES];
	memset(buf, 0x55, sizeof(buf));
	if (fd < 0 || pwrite(fd, buf, sizeof(buf), 0) != sizeof(buf) || fsync(fd)) {
		perror("setup");
		return 2;
	}
	map = mmap(NULL, sizeof(buf), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	int lost = 0, kept = 0;
	for (uint64_t r = 1; r <= (uint64_t)rounds; r++) {
		pthread_t t;
		atomic_store(&stop, 0);
		if (faults && pthread_create(&t, NULL, storer, NULL))
			return 2;
		if (fallocate(fd, mode, 0, PAGE)) {
			perror("fallocate");
			return 2;
		}
		atomic_store(&stop, 1);
		if (faults)
			pthread_join(t, NULL);
		uint64_t marker = 0xab00000000000000ull | r, got = 0;
		map[0] = marker;
		if (pread(fd, &got, sizeof(got), 0) != sizeof(got)) {
			perror("pread");
			return 2;
		}
		if (got != marker) {
			/* Still missing once the mapping is written back: the page the
			 * mapping holds is not the file's, and the store is lost. */
			uint64_t after = 0;
			if (msync((void *)map, PAGE, MS_SYNC) ||
			    pread(fd, &after, sizeof(after), 0) != sizeof(after)) {
				perror("msync, pread");
				return 2;
			}
			lost++;
			kept += after != marker;
			if (lost <= 3)
				printf("round %llu: stored %#llx through the mapping after the %s returned; pread reads %#llx, after msync %#llx\n",
				       (unsigned long long)r, (unsigned long long)marker,
				       zero ? "zero range" : "punch", (unsigned long long)got,
				       (unsigned long long)after);
		}
	}
	printf("%d rounds of %s%s: %d stores after it returned not read back, %d of them not even after msync\n",
	       rounds, zero ? "zero range" : "punch",
	       faults ? " beside write faults" : " (control, no faults)", lost, kept);
	return lost ? 1 : 0;
}
