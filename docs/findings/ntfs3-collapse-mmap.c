/* ntfs3-collapse-mmap: FALLOC_FL_COLLAPSE_RANGE of page 0 against stores through a shared
 * mapping to page 1, each store checked on its own (docs/findings/ntfs3-collapse-mmap.md).
 *
 * Each round: the file is three pages whose 8-byte slots hold markers A, B, C; a thread
 * maps page 1 in with a load and then stores a value of its own to every slot of page 1
 * in turn, a short spin between stores, while the main thread collapses page 0 away. Page
 * 1 becomes page 0 and page 2 becomes page 1. A store to slot j either came before the
 * collapse, and moved with its page (page 0 slot j holds it, page 1 slot j holds C), or
 * after it, and landed on the new page 1 (page 0 holds B, page 1 holds the store). A slot
 * with B on page 0 and C on page 1 lost a store that had completed.
 *
 *   cc -O2 -pthread -o ntfs3-collapse-mmap ntfs3-collapse-mmap.c
 *   ./ntfs3-collapse-mmap FILE ROUNDS [--sequential]
 *
 * --sequential stores every slot before the collapse starts (every slot must then read
 * the store on page 0): a check of the checker. Exit status 1 if a store was lost or a
 * slot holds something no order explains, 0 if not, 2 on an error. */
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
#define SLOTS (PG / 8)

static volatile uint64_t *map;
static atomic_long go, done;  /* the round the thread may start, and the one it finished */
static unsigned spin;

static uint64_t marker(long round, int page, int slot)
{
	return 0xabc0000000000000ull | ((uint64_t)round << 20) | ((uint64_t)page << 16) | slot;
}

static uint64_t stored(long round, int slot) { return 0x5700000000000000ull | ((uint64_t)round << 16) | slot; }

static void *storer(void *arg)
{
	(void)arg;
	for (long round = 1;; round++) {
		while (atomic_load(&go) < round)
			if (atomic_load(&go) < 0)
				return NULL;
		uint64_t seen = map[PG / 8];  /* map page 1 in, read-only until the first store */
		(void)seen;
		for (int j = 0; j < SLOTS; j++) {
			map[PG / 8 + j] = stored(round, j);
			for (volatile unsigned s = 0; s < spin; s++)
				;
		}
		atomic_store(&done, round);
	}
}

static void die(const char *what)
{
	perror(what);
	exit(2);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s FILE ROUNDS [--sequential]\n", argv[0]);
		return 2;
	}
	long rounds = atol(argv[2]);
	int sequential = argc > 3 && !strcmp(argv[3], "--sequential");
	int fd = open(argv[1], O_RDWR | O_CREAT, 0644);
	if (fd < 0)
		die("open");
	static uint64_t buf[3 * SLOTS];
	for (int p = 0; p < 3; p++)
		for (int j = 0; j < SLOTS; j++)
			buf[p * SLOTS + j] = marker(0, p, j);
	if (pwrite(fd, buf, sizeof buf, 0) != sizeof buf)
		die("pwrite");
	map = mmap(NULL, 3 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		die("mmap");
	pthread_t t;
	pthread_create(&t, NULL, storer, NULL);
	long lost = 0, odd = 0, moved = 0, after = 0;
	srand(1);
	for (long round = 1; round <= rounds; round++) {
		for (int p = 0; p < 3; p++)
			for (int j = 0; j < SLOTS; j++)
				buf[p * SLOTS + j] = marker(round, p, j);
		if (ftruncate(fd, 3 * PG) || pwrite(fd, buf, sizeof buf, 0) != sizeof buf)
			die("set up the round");
		spin = rand() % 200;
		atomic_store(&go, round);
		if (sequential)
			while (atomic_load(&done) < round)
				;
		else
			for (volatile int s = rand() % 20000; s > 0; s--)
				;
		if (fallocate(fd, FALLOC_FL_COLLAPSE_RANGE, 0, PG))
			die("fallocate(COLLAPSE_RANGE)");
		while (atomic_load(&done) < round)
			;
		uint64_t got[2 * SLOTS];
		if (pread(fd, got, sizeof got, 0) != sizeof got)
			die("pread");
		for (int j = 0; j < SLOTS; j++) {
			uint64_t p0 = got[j], p1 = got[SLOTS + j], s = stored(round, j);
			if (p0 == s && p1 == marker(round, 2, j))
				moved++;
			else if (p0 == marker(round, 1, j) && p1 == s)
				after++;
			else if (p0 == marker(round, 1, j) && p1 == marker(round, 2, j)) {
				if (!lost++)
					printf("round %ld slot %d: the store %#llx is on neither page\n",
					       round, j, (unsigned long long)s);
			} else if (!odd++)
				printf("round %ld slot %d: page 0 %#llx, page 1 %#llx\n", round, j,
				       (unsigned long long)p0, (unsigned long long)p1);
		}
	}
	atomic_store(&go, -1);
	pthread_join(t, NULL);
	printf("%ld rounds, %d stores each: %ld moved with the page, %ld after the collapse, "
	       "%ld lost, %ld unexplained\n", rounds, SLOTS, moved, after, lost, odd);
	return lost || odd ? 1 : 0;
}
