/* f2fs-insert-mmap: FALLOC_FL_INSERT_RANGE (or, with --collapse, FALLOC_FL_COLLAPSE_RANGE)
 * against write faults through a shared mapping, checked directly
 * (docs/findings/f2fs-insert-mmap.md).
 *
 * Each round: pages 0..P-1 get marker(round, page) in their first 8 bytes (pwrite), the
 * file system is synced (a checkpoint, on f2fs), then one page is inserted at offset 0 and
 * the file truncated back to P pages, while a second thread keeps storing to bytes 8-15 of
 * every page through a shared mapping. The thread never writes the first 8 bytes, so after
 * the insert page 0 must read 0 there and page k the marker of page k-1. With --collapse,
 * page 0 is collapsed and the file extended back to P pages: page k must read the marker
 * of page k+1, the last page 0 (the thread then stores only to the first P-1 pages, which
 * stay inside the file).
 *
 *   cc -O2 -pthread -o f2fs-insert-mmap f2fs-insert-mmap.c
 *   ./f2fs-insert-mmap FILE PAGES ROUNDS [--no-faults] [--no-checkpoint] [--collapse]
 *
 * Exit status 1 if a page held a stale marker, 0 if none did, 2 on an error. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/falloc.h>

#define PG 4096
static int fd, pages, stored;
static volatile uint64_t *map;
static atomic_int stop;

static void *faulter(void *arg)
{
	uint64_t n = 0;
	(void)arg;
	while (!atomic_load(&stop))
		for (int p = 0; p < stored; p++)
			map[p * PG / 8 + 1] = ++n;  /* slot 1 only */
	return NULL;
}

static uint64_t marker(long round, int page) { return 0xf2f5000000000000ull | (round << 8) | page; }

int main(int argc, char **argv)
{
	int faults = 1, checkpoint = 1, collapse = 0;
	for (int i = 4; i < argc; i++) {
		if (!strcmp(argv[i], "--no-faults"))
			faults = 0;
		else if (!strcmp(argv[i], "--no-checkpoint"))
			checkpoint = 0;
		else if (!strcmp(argv[i], "--collapse"))
			collapse = 1;
		else
			argc = 0;
	}
	if (argc < 4) {
		fprintf(stderr, "usage: %s FILE PAGES ROUNDS [--no-faults] [--no-checkpoint] "
			"[--collapse]\n", argv[0]);
		return 2;
	}
	pages = atoi(argv[2]);
	stored = collapse ? pages - 1 : pages;
	long rounds = atol(argv[3]), bad = 0, done = 0;
	fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, (off_t)pages * PG) < 0) { perror("open"); return 2; }
	map = mmap(NULL, (size_t)pages * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) { perror("mmap"); return 2; }
	pthread_t t;
	if (faults)
		pthread_create(&t, NULL, faulter, NULL);
	for (long r = 0; r < rounds; r++) {
		for (int p = 0; p < pages; p++) {
			uint64_t m = marker(r, p);
			if (pwrite(fd, &m, 8, (off_t)p * PG) != 8) { perror("pwrite"); return 2; }
		}
		if (checkpoint)
			syncfs(fd);  /* checkpointed blocks: f2fs moves them by copying pages */
		if (fallocate(fd, collapse ? FALLOC_FL_COLLAPSE_RANGE : FALLOC_FL_INSERT_RANGE, 0,
			      PG) < 0) {
			perror(collapse ? "collapse" : "insert");
			return 2;
		}
		if (ftruncate(fd, (off_t)pages * PG) < 0) { perror("ftruncate"); return 2; }
		done++;
		for (int p = 0; p < pages; p++) {
			uint64_t got = 1, want;
			if (collapse)
				want = p < pages - 1 ? marker(r, p + 1) : 0;
			else
				want = p ? marker(r, p - 1) : 0;
			if (pread(fd, &got, 8, (off_t)p * PG) != 8) { perror("pread"); return 2; }
			if (got != want) {
				bad++;
				if (bad <= 10)
					printf("round %ld: page %d slot 0 holds %#llx, want %#llx%s\n", r, p,
					       (unsigned long long)got, (unsigned long long)want,
					       got == marker(r, p) ? " (its own contents before the move)" : "");
			}
		}
	}
	atomic_store(&stop, 1);
	if (faults)
		pthread_join(t, NULL);
	printf("%ld %s, %ld pages with stale slot 0\n", done, collapse ? "collapses" : "inserts",
	       bad);
	return bad ? 1 : 0;
}
