/*
 * A clone onto one page of a file while another thread reads the page beside it: after
 * the clone returns, does a read of the cloned page return the clone's data?
 *
 *   btrfs-clone-stale-page FILE ROUNDS pread|load|storesync|fsync [trace] [store]
 *
 * FILE.src holds four pages 'a'..'d', FILE four pages 'A'..'D'. Each round clones
 * FILE.src's pages 0-1 onto FILE's pages 0-1 (one two-page extent, and the clone drops
 * FILE's cached pages 0-1), then at once: the main thread clones FILE.src's page 3 onto
 * FILE's page 0 while a second thread touches FILE's page 1 (pread; a load through a
 * shared mapping; a store through it and msync; or fsync). Then the main thread preads
 * page 0: it must read 'd'. A round that reads 'a' (the page the clone replaced) is
 * counted, and page 0 is read again after POSIX_FADV_DONTNEED to tell a stale page cache
 * (the re-read gives 'd') from stale data on disk (it gives 'a' again).
 *
 * With `store`, a stale round's page 0 gets one byte stored through the mapping first
 * (byte 8, 'x') and msync, before the page cache is dropped: does the write-back of the
 * stale page put the replaced data on disk? The re-read then tells ('a' at byte 0: yes).
 *
 * With `trace`, the kernel's trace events for FILE (btrfs_get_extent, the page cache's
 * adds and deletes) and a mark per step go to tracefs; at the first stale round tracing
 * stops and that round's part of the trace is printed.
 *
 * Exit status: 0 when every round read the clone's data, 1 otherwise, 2 on a usage or
 * setup error.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define PG 4096
#define TRACEFS "/sys/kernel/tracing/"

enum how { PREAD, LOAD, STORESYNC, FSYNC };
static const char *const hows[] = { "pread", "load", "storesync", "fsync" };

static int dst, src, rounds, marks = -1;
static enum how how;
static char *map;
static pthread_barrier_t step;

static void mark(const char *fmt, int round)
{
	char line[96];
	int n;

	if (marks < 0)
		return;
	n = snprintf(line, sizeof line, fmt, round);
	if (write(marks, line, n) != n)
		perror("trace_marker");
}

static int put(const char *file, const char *value)
{
	int fd = open(file, O_WRONLY | O_TRUNC);
	ssize_t n = -1;

	if (fd >= 0) {
		n = write(fd, value, strlen(value));
		close(fd);
	}
	if (n != (ssize_t)strlen(value)) {
		perror(file);
		return -1;
	}
	return 0;
}

static int trace_start(void)
{
	static const char *const events[] = {
		"btrfs/btrfs_get_extent",
		"filemap/mm_filemap_add_to_page_cache",
		"filemap/mm_filemap_delete_from_page_cache",
	};
	char filter[64], file[160];
	struct stat st;

	if (system("mountpoint -q " TRACEFS " || mount -t tracefs nodev " TRACEFS) != 0)
		return -1;
	if (fstat(dst, &st))
		return -1;
	snprintf(filter, sizeof filter, "ino == %lu", (unsigned long)st.st_ino);
	if (put(TRACEFS "buffer_size_kb", "16384"))
		return -1;
	for (size_t i = 0; i < sizeof events / sizeof events[0]; i++) {
		snprintf(file, sizeof file, TRACEFS "events/%s/filter", events[i]);
		if (put(file, filter))
			return -1;
		snprintf(file, sizeof file, TRACEFS "events/%s/enable", events[i]);
		if (put(file, "1"))
			return -1;
	}
	if (put(TRACEFS "trace", ""))
		return -1;
	marks = open(TRACEFS "trace_marker", O_WRONLY);
	if (marks < 0)
		return -1;
	return put(TRACEFS "tracing_on", "1");
}

/* Stop tracing and print the trace from the start of `round`. */
static void trace_show(int round)
{
	char begins[48], line[512];
	FILE *trace;
	int on = 0;

	put(TRACEFS "tracing_on", "0");
	snprintf(begins, sizeof begins, "round %d begins", round);
	trace = fopen(TRACEFS "trace", "r");
	while (trace && fgets(line, sizeof line, trace)) {
		on |= strstr(line, begins) != NULL;
		if (on)
			fputs(line, stdout);
	}
	if (trace)
		fclose(trace);
}

static void *beside(void *unused)
{
	char page[PG];
	unsigned seed = 3;

	(void)unused;
	for (int r = 0; r < rounds; r++) {
		pthread_barrier_wait(&step);
		/* a few cycles' jitter, so that the two threads meet at varying points */
		for (int i = rand_r(&seed) % 64; i > 0; i--)
			__asm__ volatile("" ::: "memory");
		mark("beside %d: begins\n", r);
		switch (how) {
		case PREAD:
			if (pread(dst, page, PG, PG) != PG)
				perror("pread");
			break;
		case LOAD:
			page[0] = *(volatile char *)(map + PG + 8);
			break;
		case STORESYNC:
			map[PG + 8] = 'x';
			if (msync(map + PG, PG, MS_SYNC))
				perror("msync");
			break;
		case FSYNC:
			if (fsync(dst))
				perror("fsync");
			break;
		}
		mark("beside %d: ends\n", r);
		pthread_barrier_wait(&step);
	}
	return NULL;
}

static int clone_range(int from_page, int pages, int to_page)
{
	struct file_clone_range range = {
		.src_fd = src,
		.src_offset = (__u64)from_page * PG,
		.src_length = (__u64)pages * PG,
		.dest_offset = (__u64)to_page * PG,
	};

	return ioctl(dst, FICLONERANGE, &range);
}

int main(int argc, char **argv)
{
	char srcpath[4096], pages[4 * PG], got[PG];
	int stale = 0, other = 0, tracing = 0, store = 0;
	pthread_t thread;

	if (argc < 4 || argc > 6 || atoi(argv[2]) <= 0)
		goto usage;
	for (how = PREAD; how <= FSYNC && strcmp(argv[3], hows[how]); how++)
		;
	if (how > FSYNC)
		goto usage;
	for (int i = 4; i < argc; i++) {
		if (!strcmp(argv[i], "trace"))
			tracing = 1;
		else if (!strcmp(argv[i], "store"))
			store = 1;
		else
			goto usage;
	}
	rounds = atoi(argv[2]);
	snprintf(srcpath, sizeof srcpath, "%s.src", argv[1]);
	dst = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
	src = open(srcpath, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (dst < 0 || src < 0) {
		perror(argv[1]);
		return 2;
	}
	for (int p = 0; p < 4; p++)
		memset(pages + p * PG, 'a' + p, PG);
	if (pwrite(src, pages, sizeof pages, 0) != sizeof pages)
		return perror("pwrite"), 2;
	for (int p = 0; p < 4; p++)
		memset(pages + p * PG, 'A' + p, PG);
	if (pwrite(dst, pages, sizeof pages, 0) != sizeof pages)
		return perror("pwrite"), 2;
	if (fsync(dst) || fsync(src))
		return perror("fsync"), 2;
	if (clone_range(0, 1, 0)) {
		perror("FICLONERANGE");
		return 2;
	}
	map = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, dst, 0);
	if (map == MAP_FAILED)
		return perror("mmap"), 2;
	if (tracing && trace_start()) {
		fprintf(stderr, "tracing could not be set up\n");
		return 2;
	}
	pthread_barrier_init(&step, NULL, 2);
	pthread_create(&thread, NULL, beside, NULL);
	for (int r = 0; r < rounds; r++) {
		mark("round %d begins\n", r);
		if (clone_range(0, 2, 0))
			return perror("FICLONERANGE"), 2;
		pthread_barrier_wait(&step);
		mark("clone %d: FILE.src page 3 onto FILE page 0 begins\n", r);
		if (clone_range(3, 1, 0))
			return perror("FICLONERANGE"), 2;
		mark("clone %d: returned\n", r);
		pthread_barrier_wait(&step);
		if (pread(dst, got, PG, 0) != PG)
			return perror("pread"), 2;
		mark("round %d: pread of page 0 returned\n", r);
		if (got[0] == 'd' && got[PG - 1] == 'd')
			continue;
		if (got[0] != 'a' || got[PG - 1] != 'a') {
			if (other++ < 5)
				printf("round %d: page 0 reads %c..%c\n", r, got[0], got[PG - 1]);
			continue;
		}
		if (tracing && stale == 0)
			trace_show(r);
		if (stale++ < 5) {
			if (store) {
				map[8] = 'x';
				if (msync(map, PG, MS_SYNC))
					return perror("msync"), 2;
			}
			posix_fadvise(dst, 0, 4 * PG, POSIX_FADV_DONTNEED);
			if (pread(dst, got, PG, 0) != PG)
				return perror("pread"), 2;
			printf("round %d: page 0 reads the page the clone replaced ('a'); "
			       "%safter dropping the page cache: '%c'\n", r,
			       store ? "a store to it written back, then, " : "", got[0]);
		}
	}
	pthread_join(thread, NULL);
	printf("%d rounds, beside the clone %s: page 0 stale in %d, something else in %d\n",
	       rounds, hows[how], stale, other);
	return stale || other;
usage:
	fprintf(stderr, "usage: %s FILE ROUNDS pread|load|storesync|fsync [trace] [store]\n",
		argv[0]);
	return 2;
}
