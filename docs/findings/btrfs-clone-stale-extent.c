/*
 * Can the mapping a read beside a clone leaves cached outlive the blocks it points to,
 * and then show a file another file's data?
 *
 *   btrfs-clone-stale-extent FILE ROUNDS [LEAKS [clone|punch]]
 *
 * FILE.src holds four pages, FILE.other is another file. Each round empties FILE and gives
 * its pages 0-1 one new two-page extent, E, that FILE alone references, with neither
 * page nor map of it cached (see fresh_extent), then at once: the main thread clones
 * FILE.src's page 3 onto FILE's page 0 while a second thread, started with the clone by
 * a spin, preads FILE's page 1. Then an O_DIRECT read of page 0 (it goes through the
 * cached mapping but caches no page) tells whether the round left a stale mapping: it
 * must read FILE.src's page 3; a round that reads the round's own page 0 is stale.
 *
 * In the first LEAKS stale rounds (default 3), the program then takes every reference to
 * E away: page 1 is written again and written back (copy-on-write: a new extent), and
 * syncfs commits the transaction, which frees E. It writes FILE.other block by block
 * (sparse, so that each block is an allocation of its own) until FIEMAP shows one of its
 * blocks on E's first block, and reads FILE's page 0 again, with O_DIRECT and through
 * the page cache. A read that returns FILE.other's block is another file's data read
 * through FILE: the leak.
 *
 * With `punch`, the round punches a hole over page 0 instead of cloning onto it, and page 0
 * must then read zeroes.
 *
 * Every page is filled with a label ("FILE r12 p0", "SRC p3", "OTHER b57") so that the
 * output says whose data a read returned. Exit status: 0 when no read returned another
 * file's data, 1 when one did, 2 on a usage or setup error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define PG 4096
#define LABEL 16
#define OTHER_BLOCKS 16384 /* FILE.other is written up to 64 MiB of blocks */

static int file, file_direct, src, other;
static atomic_int ready, go;
static char *page; /* aligned, for O_DIRECT */

static void die(const char *what)
{
	perror(what);
	exit(2);
}

static void fill(char *buf, const char *fmt, int a, int b)
{
	char label[LABEL + 1];

	snprintf(label, sizeof label, fmt, a, b);
	memset(label + strlen(label), ' ', LABEL - strlen(label));
	for (int i = 0; i < PG; i += LABEL)
		memcpy(buf + i, label, LABEL);
}

/* The label a page read holds, or "(mixed)" when its parts differ. */
static const char *label_of(const char *buf)
{
	static char label[LABEL + 1];

	for (int i = LABEL; i < PG; i += LABEL)
		if (memcmp(buf, buf + i, LABEL))
			return "(mixed)";
	memcpy(label, buf, LABEL);
	for (int i = LABEL - 1; i >= 0 && label[i] == ' '; i--)
		label[i] = 0;
	return label;
}

static void put(int fd, long pageno, const char *fmt, int a, int b)
{
	fill(page, fmt, a, b);
	if (pwrite(fd, page, PG, pageno * PG) != PG)
		die("pwrite");
}

/* The disk address of the block at `pageno` of `fd`, and the length of its extent. */
static uint64_t physical(int fd, long pageno, uint64_t *extent_length)
{
	struct {
		struct fiemap map;
		struct fiemap_extent extent;
	} fm = { .map = { .fm_start = (uint64_t)pageno * PG, .fm_length = 2 * PG,
			  .fm_flags = FIEMAP_FLAG_SYNC, .fm_extent_count = 1 } };
	struct fiemap_extent *e = &fm.map.fm_extents[0];

	if (ioctl(fd, FS_IOC_FIEMAP, &fm.map))
		die("FS_IOC_FIEMAP");
	if (fm.map.fm_mapped_extents != 1)
		return 0;
	if (extent_length)
		*extent_length = e->fe_length - (pageno * PG - e->fe_logical);
	return e->fe_physical + (pageno * PG - e->fe_logical);
}

/* Page 0 read with O_DIRECT (through the cached mapping, caching no page). */
static const char *read_direct(void)
{
	ssize_t n = pread(file_direct, page, PG, 0);

	if (n == PG)
		return label_of(page);
	return n < 0 ? strerror(errno) : "(short read)";
}

static void *beside(void *unused)
{
	char buf[PG];

	(void)unused;
	atomic_store(&ready, 1);
	while (!atomic_load(&go))
		;
	if (pread(file, buf, PG, PG) != PG)
		perror("pread beside");
	return NULL;
}

/*
 * FILE's pages 0-1 as one new extent that FILE alone references, with no map of it
 * cached: written to FILE.new and cloned from there (a clone drops the destination's
 * cached maps; a write would leave its map cached, and 6.1 keeps a small file's maps
 * when its pages go), then FILE.new is removed.
 */
static int fresh_extent(int round, const char *path)
{
	struct file_clone_range both = { .src_length = 2 * PG };
	char new_path[4096 + 8];
	int ret;

	snprintf(new_path, sizeof new_path, "%s.new", path);
	both.src_fd = open(new_path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (both.src_fd < 0)
		return -1;
	put(both.src_fd, 0, "FILE r%d p%d", round, 0);
	put(both.src_fd, 1, "FILE r%d p%d", round, 1);
	ret = fsync(both.src_fd) || ioctl(file, FICLONERANGE, &both);
	close(both.src_fd);
	return ret || unlink(new_path);
}

/* Take every reference to the round's extent away, reuse its blocks, read page 0. */
static int leak(int round, uint64_t e_block)
{
	char buf[PG];
	int found = -1, leaked = 0;

	put(file, 1, "NEW r%d p1", round, 0);
	if (fsync(file) || syncfs(file) || syncfs(file))
		die("fsync, syncfs");
	printf("  page 1 rewritten and the transaction committed (E freed); page 0 read "
	       "directly: %s\n", read_direct());

	for (int b = 0; b < OTHER_BLOCKS && found < 0; b++) {
		put(other, 2L * b, "OTHER b%d", b, 0);
		if (b % 64 == 63) {
			if (fsync(other))
				die("fsync other");
			for (int k = b - 63; k <= b && found < 0; k++)
				if (physical(other, 2L * k, NULL) == e_block)
					found = k;
		}
	}
	if (found < 0) {
		printf("  FILE.other's %d blocks did not reuse E's first block\n", OTHER_BLOCKS);
	} else {
		const char *direct = read_direct(), *buffered;

		printf("  FILE.other's block %d is now on E's first block (disk byte %llu)\n",
		       found, (unsigned long long)e_block);
		leaked |= strncmp(direct, "OTHER", 5) == 0;
		printf("  FILE's page 0 read directly: %s\n", direct);
		if (pread(file, buf, PG, 0) != PG)
			die("pread page 0");
		buffered = label_of(buf);
		leaked |= strncmp(buffered, "OTHER", 5) == 0;
		printf("  FILE's page 0 read through the page cache: %s\n", buffered);
		printf("  FILE's page 0 is on disk byte %llu (FIEMAP: FILE.src's page 3 is "
		       "on %llu)\n", (unsigned long long)physical(file, 0, NULL),
		       (unsigned long long)physical(src, 3, NULL));
	}
	/* the next round starts with FILE.other empty */
	if (ftruncate(other, 0) || syncfs(other))
		die("ftruncate other");
	return leaked;
}

int main(int argc, char **argv)
{
	char path[4096];
	int rounds, leaks = 3, punch = 0, stale = 0, tries = 0, leaked = 0, split = 0;

	if (argc < 3 || argc > 5 || (rounds = atoi(argv[2])) <= 0 ||
	    (argc >= 4 && (leaks = atoi(argv[3])) < 0) ||
	    (argc == 5 && !(punch = !strcmp(argv[4], "punch")) && strcmp(argv[4], "clone"))) {
		fprintf(stderr, "usage: %s FILE ROUNDS [LEAKS [clone|punch]]\n", argv[0]);
		return 2;
	}
	if (posix_memalign((void **)&page, PG, PG))
		die("posix_memalign");
	file = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
	file_direct = open(argv[1], O_RDONLY | O_DIRECT);
	snprintf(path, sizeof path, "%s.src", argv[1]);
	src = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	snprintf(path, sizeof path, "%s.other", argv[1]);
	other = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (file < 0 || file_direct < 0 || src < 0 || other < 0)
		die("open");
	for (int p = 0; p < 4; p++)
		put(src, p, "SRC p%d", p, 0);
	if (fsync(src))
		die("fsync src");

	for (int r = 0; r < rounds; r++) {
		struct file_clone_range onto_0 = { .src_fd = src, .src_offset = 3 * PG,
						   .src_length = PG, .dest_offset = 0 };
		uint64_t e_block, e_length = 0;
		const char *got;
		char want[32];
		pthread_t thread;

		if (ftruncate(file, 0) || fresh_extent(r, argv[1]))
			die("the round's extent");
		e_block = physical(file, 0, &e_length);
		if (!e_block || e_length < 2 * PG) {
			split++; /* not one two-page extent: no window this round */
			continue;
		}

		atomic_store(&ready, 0);
		atomic_store(&go, 0);
		if (pthread_create(&thread, NULL, beside, NULL))
			die("pthread_create");
		while (!atomic_load(&ready))
			;
		atomic_store(&go, 1);
		if (punch ? fallocate(file, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, PG)
			  : ioctl(file, FICLONERANGE, &onto_0))
			die(punch ? "punch" : "FICLONERANGE");
		pthread_join(thread, NULL);

		got = read_direct();
		if (!strcmp(got, punch ? "" : "SRC p3"))
			continue;
		snprintf(want, sizeof want, "FILE r%d p0", r);
		if (strcmp(got, want)) {
			printf("round %d: page 0 read directly: %s (neither the clone's data "
			       "nor the replaced)\n", r, got);
			continue;
		}
		stale++;
		printf("round %d: after the clone page 0 read directly: %s (stale; E on disk "
		       "byte %llu)\n", r, got, (unsigned long long)e_block);
		if (tries < leaks) {
			tries++;
			leaked |= leak(r, e_block);
		}
	}
	printf("%d rounds: %d stale, %d not one extent; %d stale rounds taken on: %s\n",
	       rounds, stale, split, tries,
	       leaked ? "another file's data read through FILE" : "no other file's data read");
	return leaked;
}
