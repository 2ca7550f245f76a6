// SPDX-License-Identifier: GPL-2.0
/*
 * t_mmap_fault_op_race: an operation that replaces a range's data (copy_file_range,
 * FICLONERANGE, punch, zero, truncate, insert or collapse range) against write faults
 * through a shared mapping of that range, with every byte the stores do not touch checked
 * afterwards.
 *
 * Each round writes known markers into the file with pwrite, starts a thread that keeps
 * storing to the second 8-byte word ("slot 1") of each mapped page, runs the operation,
 * stops the thread and reads the file back with pread. No one but the operation writes
 * the other words, so each must hold exactly what the operation put there:
 *
 *   copy, clone   page 0 of FILE.src (this round's marker) onto page 0 of FILE
 *                 (copy_file_range / FICLONERANGE between two inodes);
 *   punch, zero   page 0 (FALLOC_FL_PUNCH_HOLE / FALLOC_FL_ZERO_RANGE): zeroes;
 *   truncate      the file to 0 and back to one page: zeroes (a store past EOF meanwhile
 *                 raises SIGBUS, which the thread catches and goes on);
 *   insert        a page at 0 (FALLOC_FL_INSERT_RANGE), then back to 4 pages: page 0
 *                 zeroes, page k the marker page k-1 had;
 *   collapse      page 0 of 5 (FALLOC_FL_COLLAPSE_RANGE), then back to 5 pages: page k
 *                 the marker page k+1 had, page 4 zeroes (stores go to pages 0-3).
 *
 * A round is stale when a word holds anything else: the data the operation replaced came
 * back, typically because a page dirtied by a fault inside the operation's window was
 * written back over the result.
 *
 * Two other ways to store, for races of other shapes:
 *   -S  (copy, clone) the thread stores to word 1 of the source page instead; the
 *       destination must still read the source's data in every other word (a clone that
 *       shares a block the fault made but had not yet written reads zeros there). The
 *       source is written once, so each round clones blocks the last clone still shares;
 *   -l  (insert, collapse) the thread stores once to each word of page 1 in turn, each a
 *       value of its own, while the operation moves that page (to page 2, to page 0).
 *       Each store came before the move and moved with the page, or after it and landed
 *       on the new page 1: exactly one of the two places must hold it, the other the data
 *       the operation put there. A store in neither place was lost;
 *   -R  no stores: the thread calls readahead(2) on the file's pages in a loop while the
 *       operation runs. Every word must hold what the operation put there; a page that
 *       reads the replaced data was read back from the blocks between the operation's
 *       cache drop and its block update, and stayed cached (gfs2's punch);
 *   -B  (clone) no stores: the thread reads the page beside the clone's destination.
 *       Each round first clones FILE.src's pages 0-1 onto FILE's pages 0-1 (one extent
 *       for both, and the clone drops FILE's cached pages), then clones FILE.src's page 3
 *       onto FILE's page 0 while the thread reads page 1, once, started as the clone
 *       is (a read that came before would leave page 1's mapping cached, and the one
 *       during the clone would not look it up). Page 0 must then read FILE.src's page
 *       3 and page 1 its page 1: a read beside the clone
 *       that caches where the two-page extent's blocks were, after the clone dropped
 *       that range's cached mappings, sends page 0's next read to the block the clone
 *       replaced (btrfs, docs/findings/btrfs-clone-stale-page.md). FILE.src is written once;
 *   -W  (clone) within one file of WITHIN_PAGES pages: each round makes WITHIN_CLONES
 *       clones of 1 or 2 pages from random places of the file onto others that do not
 *       overlap them, so later clones share blocks earlier ones shared, while the thread
 *       stores to random words of every page. Nothing ever writes a zero word (the file
 *       starts nonzero, stores are nonzero, clones copy the file's own words), so after
 *       an fsync a zero word is data lost: a clone shared a block a fault had given the
 *       page but nothing had written yet.
 *
 * Reading back:
 *   -D  with O_DIRECT instead of through the page cache: what the storage holds (on a
 *       network client, the server's file), past anything the client caches or assumes.
 *       6.12's SMB client reads zeros past the size it last set without asking the
 *       server (netfs's zero_point), so a truncate's cut-off data written back to the
 *       server after the truncate shows only this way. A file system that refuses
 *       O_DIRECT is read through the cache, and the summary says so.
 *
 *   t_mmap_fault_op_race -o OP [-r ROUNDS] [-m N [-f]] [-s] [-D] [-n | -S | -l | -R | -W] FILE
 *
 *   -r ROUNDS  rounds to run (default 100)
 *   -m N       the thread also writes the pages back (msync MS_SYNC) every N stores, as
 *              the flusher would; a punch drops a dirty page without writing it, so only a
 *              writeback inside its window can carry the page to disk
 *   -f         (with -m) start that writeback with sync_file_range(SYNC_FILE_RANGE_WRITE)
 *              instead, as the flusher does: FUSE's msync (fuse_fsync) waits for the inode
 *              lock the operation holds, so only this reaches the operation's window there
 *   -s         syncfs before each operation (f2fs: a checkpoint, which the insert needs)
 *   -n         no stores: the control, which must never be stale
 *
 * Prints one line per stale round (the first few) and a summary; exit status 1 if any
 * round was stale or lost a store, 3 if the file system refused the operation
 * (EOPNOTSUPP), 2 on another error, 0 otherwise.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define SLOTS_PER_PAGE(pg) ((pg) / 8)
#define INITIAL 0x1111111100000000ull

enum op { COPY, CLONE, PUNCH, ZERO, TRUNCATE, INSERT, COLLAPSE };
static const char *const op_names[] = { "copy", "clone", "punch", "zero", "truncate",
					"insert", "collapse" };

static long pg;
static int fd, src_fd = -1;
static volatile uint64_t *map;
static int mapped_pages;	/* pages the thread stores to */
static int lost_mode;		/* -l: one store to each word of page LOST_PAGE */
static int source_stores;	/* -S: the stores go to the source */
static int within_mode;		/* -W: clones within the file, random stores */
static int readahead_mode;	/* -R: readahead(2) instead of stores */
static int beside_mode;		/* -B: a clone onto page 0 beside reads of page 1 */
#define BESIDE_SRC_PAGES 4
#define WITHIN_PAGES 16
#define WITHIN_CLONES 16
static long round_no;
#define LOST_PAGE 1
static long msync_every;
static int flusher_writeback;	/* -f: sync_file_range instead of msync */
static atomic_int stop, storing;
static sigjmp_buf bus_jmp;
static __thread int in_store;

static uint64_t marker(long round, int page)
{
	return 0xab00000000000000ull | (uint64_t)round << 8 | (uint64_t)(page + 1);
}

static void die(const char *what)
{
	fprintf(stderr, "%s: %s\n", what, strerror(errno));
	exit(2);
}

static void on_sigbus(int sig)
{
	(void)sig;
	if (!in_store)
		abort();
	siglongjmp(bus_jmp, 1);
}

/* A store or a writeback past EOF (the truncate) raises SIGBUS: skip it. */
static void store(long word, uint64_t value)
{
	if (sigsetjmp(bus_jmp, 0) == 0)
		map[word] = value;
}

static void writeback(void)
{
	if (flusher_writeback)
		sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
	else if (sigsetjmp(bus_jmp, 0) == 0)
		msync((void *)map, mapped_pages * pg, MS_SYNC);
}

static void *store_thread(void *arg)
{
	uint64_t value = 0x5700000000000000ull;
	long stores = 0;

	(void)arg;
	in_store = 1;
	while (!atomic_load(&stop)) {
		for (int p = 0; p < mapped_pages; p++)
			store(p * SLOTS_PER_PAGE(pg) + 1, ++value);
		atomic_store(&storing, 1);
		if (msync_every && ++stores % msync_every == 0)
			writeback();
	}
	return NULL;
}

/* -W: nonzero values to random words of every page. */
static void *random_store_thread(void *arg)
{
	unsigned seed = (unsigned)round_no;
	uint64_t value = 0x5700000000000000ull;

	(void)arg;
	while (!atomic_load(&stop)) {
		long word = rand_r(&seed) % (mapped_pages * SLOTS_PER_PAGE(pg));

		map[word] = ++value;
		atomic_store(&storing, 1);
	}
	return NULL;
}

/* -R: readahead of every page of the file, over and over. */
static void *readahead_thread(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		readahead(fd, 0, mapped_pages * pg);
		atomic_store(&storing, 1);
	}
	return NULL;
}

/* -B: one read of page 1, started with the clone (`go`). */
static atomic_int go;

static void *beside_thread(void *arg)
{
	void *page;

	(void)arg;
	if (posix_memalign(&page, pg, pg))
		return NULL;
	atomic_store(&storing, 1);
	while (!atomic_load(&go))
		;
	if (pread(fd, page, pg, pg) != pg)
		perror("pread");
	free(page);
	return NULL;
}

static uint64_t lost_value(long round, long word)
{
	return 0x5100000000000000ull | (uint64_t)round << 16 | (uint64_t)word;
}

static void *lost_store_thread(void *arg)
{
	(void)arg;
	for (long w = 0; w < SLOTS_PER_PAGE(pg); w++) {
		map[LOST_PAGE * SLOTS_PER_PAGE(pg) + w] = lost_value(round_no, w);
		atomic_store(&storing, 1);
		for (volatile int spin = 0; spin < 2000; spin++)
			;	/* spread the stores over the operation */
	}
	return NULL;
}

static void put_page(int page, uint64_t value, int file)
{
	uint64_t buf[SLOTS_PER_PAGE(pg)];

	for (long i = 0; i < SLOTS_PER_PAGE(pg); i++)
		buf[i] = value;
	if (pwrite(file, buf, pg, page * pg) != pg)
		die("pwrite");
}

/* The file's contents before the operation, and what page k must read after it. */
static int file_pages(enum op op)
{
	if (within_mode)
		return WITHIN_PAGES;
	if (beside_mode)
		return 2;
	return op == INSERT ? 4 : op == COLLAPSE ? 5 : 1;
}

static uint64_t expected(enum op op, long round, int page)
{
	if (beside_mode)	/* FILE.src's page 3 on page 0, its page 1 on page 1 */
		return marker(0, page == 0 ? 3 : 1);
	switch (op) {
	case COPY:
	case CLONE:
		return marker(source_stores ? 1 : round, 0);
	case INSERT:
		return page == 0 ? 0 : marker(round, page - 1);
	case COLLAPSE:
		return page == 4 ? 0 : marker(round, page + 1);
	default:
		return 0;
	}
}

static int run_op(enum op op)
{
	loff_t in = 0, out = 0;
	struct file_clone_range fcr = { .src_fd = src_fd, .src_length = pg };

	if (within_mode) {
		unsigned seed = (unsigned)round_no;

		for (int c = 0; c < WITHIN_CLONES; c++) {
			int n = 1 + rand_r(&seed) % 2, from, to;

			do {
				from = rand_r(&seed) % (WITHIN_PAGES - n + 1);
				to = rand_r(&seed) % (WITHIN_PAGES - n + 1);
			} while (from < to + n && to < from + n);	/* no overlap */
			fcr = (struct file_clone_range){ .src_fd = fd, .src_offset = from * pg,
							  .src_length = n * pg,
							  .dest_offset = to * pg };
			if (ioctl(fd, FICLONERANGE, &fcr))
				return -1;
		}
		return 0;
	}
	if (beside_mode) {
		fcr.src_offset = 3 * pg;
		return ioctl(fd, FICLONERANGE, &fcr);
	}
	switch (op) {
	case COPY:
		return copy_file_range(src_fd, &in, fd, &out, pg, 0) == pg ? 0 : -1;
	case CLONE:
		return ioctl(fd, FICLONERANGE, &fcr);
	case PUNCH:
		return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, pg);
	case ZERO:
		return fallocate(fd, FALLOC_FL_ZERO_RANGE, 0, pg);
	case TRUNCATE:
		return ftruncate(fd, 0) || ftruncate(fd, pg);
	case INSERT:
		return fallocate(fd, FALLOC_FL_INSERT_RANGE, 0, pg) || ftruncate(fd, 4 * pg);
	case COLLAPSE:
		return fallocate(fd, FALLOC_FL_COLLAPSE_RANGE, 0, pg) || ftruncate(fd, 5 * pg);
	}
	return -1;
}

/* -l: where the operation moves page LOST_PAGE (collapse: down one page, insert: up). */
static int moved_to(enum op op)
{
	return op == COLLAPSE ? LOST_PAGE - 1 : LOST_PAGE + 1;
}

/* -l: whether word w of the page the thread stored to (and of the page it moved to) holds
 * its store exactly once, the other place the operation's data. */
static int store_accounted(enum op op, long round, const uint64_t *buf, long w)
{
	int dest = moved_to(op);
	uint64_t moved = buf[dest * SLOTS_PER_PAGE(pg) + w];
	uint64_t stayed = buf[LOST_PAGE * SLOTS_PER_PAGE(pg) + w];
	uint64_t v = lost_value(round, w);

	return (moved == v && stayed == expected(op, round, LOST_PAGE)) ||
	       (moved == expected(op, round, dest) && stayed == v);
}

/* The first word of the file that reads wrong after round `round`, or -1. */
static long first_wrong_word(enum op op, long round, const uint64_t *buf, int pages,
			     int stores)
{
	int dest = moved_to(op);

	for (long i = 0; within_mode && i < pages * SLOTS_PER_PAGE(pg); i++)
		if (buf[i] == 0)
			return i;
	if (within_mode)
		return -1;
	for (int p = 0; p < pages; p++) {
		for (long w = 0; w < SLOTS_PER_PAGE(pg); w++) {
			long i = p * SLOTS_PER_PAGE(pg) + w;

			if (lost_mode && (p == dest || p == LOST_PAGE)) {
				if (!store_accounted(op, round, buf, w))
					return i;
			} else if (buf[i] != expected(op, round, p) &&
				   !(stores && w == 1 && p < mapped_pages)) {
				return i;
			}
		}
	}
	return -1;
}

int main(int argc, char **argv)
{
	long rounds = 100, stale = 0, lost = 0, moved = 0, later = 0;
	int no_stores = 0, sync_first = 0, direct = 0, opt;
	int op = -1;

	while ((opt = getopt(argc, argv, "o:r:m:fsnSlRWBD")) != -1) {
		switch (opt) {
		case 'o':
			for (int i = 0; i < (int)(sizeof(op_names) / sizeof(*op_names)); i++)
				if (!strcmp(optarg, op_names[i]))
					op = i;
			break;
		case 'r':
			rounds = atol(optarg);
			break;
		case 'm':
			msync_every = atol(optarg);
			break;
		case 'f':
			flusher_writeback = 1;
			break;
		case 's':
			sync_first = 1;
			break;
		case 'n':
			no_stores = 1;
			break;
		case 'S':
			source_stores = 1;
			break;
		case 'l':
			lost_mode = 1;
			break;
		case 'R':
			readahead_mode = 1;
			break;
		case 'W':
			within_mode = 1;
			break;
		case 'B':
			beside_mode = 1;
			break;
		case 'D':
			direct = 1;
			break;
		default:
			op = -1;
			optind = argc;
		}
	}
	if (op < 0 || optind != argc - 1 || rounds < 1 || msync_every < 0 ||
	    (flusher_writeback && !msync_every) ||
	    source_stores + lost_mode + within_mode + readahead_mode + beside_mode > 1 ||
	    (no_stores && (source_stores || lost_mode || readahead_mode)) ||
	    ((within_mode || beside_mode) && op != CLONE) ||
	    (source_stores && op != COPY && op != CLONE) ||
	    (lost_mode && op != INSERT && op != COLLAPSE)) {
		fprintf(stderr, "usage: %s -o copy|clone|punch|zero|truncate|insert|collapse "
			"[-r ROUNDS] [-m N [-f]] [-s] [-D] [-n | -S (copy, clone) | -l (insert, "
			"collapse) | -R] [-W | -B (clone)] FILE\n", argv[0]);
		return 2;
	}
	pg = sysconf(_SC_PAGESIZE);
	const char *path = argv[optind];
	int pages = file_pages(op);
	mapped_pages = lost_mode ? LOST_PAGE + 1 : op == COLLAPSE ? 4 : pages;
	if (within_mode)
		mapped_pages = pages;

	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		die(path);
	if ((op == COPY || op == CLONE) && !within_mode) {
		char src[4096];

		snprintf(src, sizeof(src), "%s.src", path);
		src_fd = open(src, O_RDWR | O_CREAT | O_TRUNC, 0644);
		if (src_fd < 0 || ftruncate(src_fd, pg))
			die(src);
	}
	if (beside_mode) {	/* written once, and written back: one extent */
		for (int p = 0; p < BESIDE_SRC_PAGES; p++)
			put_page(p, marker(0, p), src_fd);
		if (fsync(src_fd))
			die("fsync");
	}
	if (ftruncate(fd, pages * pg))
		die("ftruncate");
	map = mmap(NULL, mapped_pages * pg, PROT_READ | PROT_WRITE, MAP_SHARED,
		   source_stores ? src_fd : fd, 0);
	if (map == MAP_FAILED)
		die("mmap");
	struct sigaction sa = { .sa_handler = on_sigbus, .sa_flags = SA_NODEFER };
	sigaction(SIGBUS, &sa, NULL);

	uint64_t *buf;
	if (posix_memalign((void **)&buf, pg, pages * pg))
		die("posix_memalign");
	int read_fd = fd;	/* -D: a descriptor of the same file with O_DIRECT */
	if (direct) {
		read_fd = open(path, O_RDONLY | O_DIRECT);
		if (read_fd < 0 && errno != EINVAL)
			die(path);
		if (read_fd < 0)
			read_fd = fd;
	}
	for (long r = 1; r <= rounds; r++) {
		pthread_t thread;

		round_no = r;
		if (ftruncate(fd, pages * pg))
			die("ftruncate");
		for (int p = 0; !beside_mode && p < pages; p++)
			put_page(p, op == COPY || op == CLONE ? INITIAL : marker(r, p), fd);
		/* -S writes the source once: later rounds clone it while the previous
		 * round's clone still shares its blocks, so a store must copy them on write */
		if (src_fd >= 0 && !beside_mode && !(source_stores && r > 1))
			put_page(0, marker(r, 0), src_fd);
		if (beside_mode) {	/* FILE.src's pages 0-1 onto FILE's: one extent */
			struct file_clone_range both = { .src_fd = src_fd, .src_length = 2 * pg };

			if (ioctl(fd, FICLONERANGE, &both)) {
				fprintf(stderr, "round %ld: clone: %s\n", r, strerror(errno));
				return errno == EOPNOTSUPP || errno == EXDEV ? 3 : 2;
			}
		}
		if (sync_first && syncfs(fd))
			die("syncfs");

		atomic_store(&stop, 0);
		atomic_store(&storing, 0);
		atomic_store(&go, 0);
		if (!no_stores) {
			if (pthread_create(&thread, NULL,
					   lost_mode ? lost_store_thread : within_mode ?
					   random_store_thread : readahead_mode ?
					   readahead_thread : beside_mode ?
					   beside_thread : store_thread, NULL))
				die("pthread_create");
			while (!atomic_load(&storing))
				;	/* the pages are mapped and dirty before the operation */
		}
		atomic_store(&go, 1);
		int ret = run_op(op);
		int err = errno;
		atomic_store(&stop, 1);
		if (!no_stores)
			pthread_join(thread, NULL);
		if (ret) {
			fprintf(stderr, "round %ld: %s: %s\n", r, op_names[op], strerror(err));
			return err == EOPNOTSUPP ? 3 : 2;
		}

		if (within_mode && fsync(fd))
			die("fsync");
		if (pread(read_fd, buf, pages * pg, 0) != pages * pg)
			die("pread");
		long i = first_wrong_word(op, r, buf, pages,
					  !no_stores && !readahead_mode && !beside_mode);
		for (long w = 0; lost_mode && w < SLOTS_PER_PAGE(pg); w++) {
			int dest = moved_to(op);
			int m = buf[dest * SLOTS_PER_PAGE(pg) + w] == lost_value(r, w);
			int l = buf[LOST_PAGE * SLOTS_PER_PAGE(pg) + w] == lost_value(r, w);

			moved += m && !l;
			later += l && !m;
			lost += !m && !l;
		}
		if (i < 0)
			continue;
		if (++stale <= 5)
			printf("round %ld: %s: page %ld word %ld reads %#llx\n", r, op_names[op],
			       i / SLOTS_PER_PAGE(pg), i % SLOTS_PER_PAGE(pg),
			       (unsigned long long)buf[i]);
	}
	printf("%s: %ld of %ld rounds stale (%s)", op_names[op], stale, rounds,
	       no_stores ? "no stores" : source_stores ? "stores to word 1 of the source" :
	       lost_mode ? "one store to each word of page 1" :
	       readahead_mode ? "readahead(2) of the file, no stores" :
	       beside_mode ? "reads of page 1 beside a clone onto page 0, no stores" :
	       within_mode ? "clones within the file, stores to random words" :
	       "stores to word 1 of each page");
	if (lost_mode)
		printf(", %ld of %ld stores lost (%ld moved with the page, %ld landed after "
		       "the move)", lost, rounds * SLOTS_PER_PAGE(pg), moved, later);
	if (msync_every && !no_stores)
		printf(", written back every %ld stores by %s", msync_every,
		       flusher_writeback ? "sync_file_range" : "msync");
	if (direct)
		printf(read_fd != fd ? ", read back with O_DIRECT" :
		       ", read back through the page cache: O_DIRECT refused");
	printf("\n");
	return stale ? 1 : 0;
}
