/* ocfs2 reflink against mmap stores, two tasks, checked without fsrace's checker:
 * no operation ever writes a zero word (the file starts nonzero, stores are nonzero,
 * clones copy the file's own words), so a read that returns a zero word is data lost.
 *   conc FILE PAGES SECONDS [--procs] [--msync] [--no-store] [--one-page] [--pwrite]
 *        [--store-sources | --store-destinations] [--old-data MB]
 * Task 1 clones random ranges of the file onto others (FICLONERANGE, 1 or 2 pages) and
 * reads random pages; task 2 (a thread, or with --procs a process with its own mapping)
 * stores nonzero words to random slots through a shared mapping.
 * --old-data MB: first write MB megabytes of another file, FILE.old, every word marked
 * as its own (OLD_DATA | n), sync it to disk and delete it, so that the clusters it
 * freed hold its data, as on a disk in use; a word of it read from FILE is another
 * file's data exposed, and counted apart from the zero words. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PG 4096
#define SLOTS (PG / 8)
#define OLD_DATA 0x0de1e7ed00000000ull  /* the words of the deleted file (--old-data) */
#define OLD_MASK 0xffffffff00000000ull
static int fd, pages, msyncs, maxn = 2, use_pwrite;
static char roles;  /* 0: any page; 's' or 'd': clones go from the upper half of the file to
		     * the lower, stores only to the sources ('s') or destinations ('d') */
static double seconds;
static atomic_int stop;

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static volatile uint64_t *map_it(void)
{
	void *p = mmap(NULL, (size_t)pages * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		exit(2);
	}
	return p;
}

static void *storer(void *arg)
{
	volatile uint64_t *map = map_it();
	unsigned seed = 7;
	uint64_t n = 0;
	double end = now() + seconds;
	(void)arg;
	while (!atomic_load(&stop) && now() < end) {
		int p = rand_r(&seed) % pages, s = rand_r(&seed) % SLOTS;
		if (roles)
			p = p % (pages / 2) + (roles == 's' ? pages / 2 : 0);
		uint64_t v = 0x5700000000000000ull | ++n;
		if (use_pwrite)
			pwrite(fd, &v, 8, (off_t)p * PG + s * 8);
		else
			map[p * SLOTS + s] = v;
		if (msyncs && rand_r(&seed) % 8 == 0)
			msync((void *)(map + p * SLOTS), PG, MS_SYNC);
	}
	return (void *)(uintptr_t)n;
}

static long old_words;  /* words of the deleted file read from FILE, by zeros() */

/* How many zero words page p holds now; words of the deleted file count too, and are
 * added up in old_words. */
static int zeros(int p)
{
	uint64_t buf[SLOTS];
	int z = 0;
	if (pread(fd, buf, PG, (off_t)p * PG) != PG) {
		perror("pread");
		exit(2);
	}
	for (int s = 0; s < SLOTS; s++) {
		int old = (buf[s] & OLD_MASK) == OLD_DATA;
		z += !buf[s] || old;
		old_words += old;
	}
	return z;
}

/* --old-data: a file's worth of marked words on disk, in clusters now free. */
static void leave_old_data(const char *file, long mb)
{
	char path[4096];
	uint64_t *buf = malloc(1 << 20);
	snprintf(path, sizeof(path), "%s.old", file);
	int old = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (old < 0 || !buf) {
		perror(path);
		exit(2);
	}
	for (long m = 0, n = 0; m < mb; m++) {
		for (int w = 0; w < (1 << 20) / 8; w++)
			buf[w] = OLD_DATA | (uint32_t)n++;
		if (write(old, buf, 1 << 20) != 1 << 20) {
			perror(path);
			exit(2);
		}
	}
	fsync(old);
	close(old);
	unlink(path);
	sync();
	free(buf);
}

int main(int argc, char **argv)
{
	int procs = 0, stores = 1;
	long old_mb = 0;
	for (int i = 4; i < argc; i++) {
		if (!strcmp(argv[i], "--procs"))
			procs = 1;
		else if (!strcmp(argv[i], "--msync"))
			msyncs = 1;
		else if (!strcmp(argv[i], "--no-store"))
			stores = 0;
		else if (!strcmp(argv[i], "--one-page"))
			maxn = 1;
		else if (!strcmp(argv[i], "--pwrite"))  /* store with pwrite(2), not the mapping */
			use_pwrite = 1;
		else if (!strcmp(argv[i], "--store-sources"))
			roles = 's';
		else if (!strcmp(argv[i], "--store-destinations"))
			roles = 'd';
		else if (!strcmp(argv[i], "--old-data") && i + 1 < argc)
			old_mb = atol(argv[++i]);
		else
			argc = 0;
	}
	if (argc < 4) {
		fprintf(stderr, "usage: %s FILE PAGES SECONDS [--procs] [--msync] [--no-store] "
				"[--one-page] [--pwrite] [--store-sources | --store-destinations] "
				"[--old-data MB]\n",
			argv[0]);
		return 2;
	}
	pages = atoi(argv[2]);
	seconds = atof(argv[3]);
	if (old_mb > 0)
		leave_old_data(argv[1], old_mb);
	fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
	uint64_t *init = malloc((size_t)pages * PG);
	for (int w = 0; w < pages * SLOTS; w++)
		init[w] = 0x1111000000000000ull | w;
	if (fd < 0 || pwrite(fd, init, (size_t)pages * PG, 0) != (ssize_t)pages * PG) {
		perror(argv[1]);
		return 2;
	}
	fsync(fd);
	pthread_t t;
	pid_t child = -1;
	if (stores) {
		if (procs) {
			child = fork();
			if (!child) {
				storer(NULL);
				_exit(0);
			}
		} else
			pthread_create(&t, NULL, storer, NULL);
	}
	long clones = 0, refused = 0, reads = 0, bad = 0;
	unsigned seed = 1;
	double end = now() + seconds;
	while (now() < end) {
		int p = rand_r(&seed) % pages;
		if (rand_r(&seed) % 8 < 5) {
			int n = 1 + rand_r(&seed) % maxn, src = rand_r(&seed) % pages;
			if (roles) {
				p %= pages / 2;
				src = src % (pages / 2) + pages / 2;
			}
			if (p + n > pages || src + n > pages || (src < p + n && p < src + n))
				continue;
			struct file_clone_range r = { .src_fd = fd, .src_offset = (uint64_t)src * PG,
						      .src_length = (uint64_t)n * PG,
						      .dest_offset = (uint64_t)p * PG };
			if (ioctl(fd, FICLONERANGE, &r) < 0)
				refused++;
			else
				clones++;
		} else {
			int z = zeros(p);
			reads++;
			if (z && bad++ < 5)
				printf("read %ld: page %d has %d zero%s words\n", reads, p, z,
				       old_mb ? " or deleted-file" : "");
		}
	}
	atomic_store(&stop, 1);
	if (stores) {
		if (procs)
			waitpid(child, NULL, 0);
		else
			pthread_join(t, NULL);
	}
	fsync(fd);
	long read_old = old_words;
	old_words = 0;
	int final = 0;
	for (int p = 0; p < pages; p++)
		final += zeros(p) > 0;
	/* Then from the disk: the cached pages dropped (they are clean after the fsync). */
	posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	int disk = 0;
	for (int p = 0; p < pages; p++)
		disk += zeros(p) > 0;
	printf("%ld clones (%ld refused), %ld reads: %ld with zero words; after fsync, %d of %d "
	       "pages hold zero words; after the cache is dropped, %d\n", clones, refused, reads,
	       bad, final, pages, disk);
	if (old_mb > 0)
		printf("words of the deleted file among them: %ld in the reads while racing; "
		       "in the file after fsync and after the drop, %ld\n", read_old, old_words);
	return bad || final || disk ? 1 : 0;
}
