/* gfs2 hole punch against readahead(2), two tasks, checked without fsrace's checker.
 *   conc FILE PAGES ROUNDS [--fadvise] [--no-readahead] [--persist]
 * Each round writes a nonzero stamp over PAGES pages and fsyncs them to their blocks;
 * task 1 punches the whole range (FALLOC_FL_PUNCH_HOLE | KEEP_SIZE) while task 2 asks
 * for readahead of it (readahead(2), or with --fadvise POSIX_FADV_WILLNEED) in a loop.
 * After the punch has returned and task 2 has stopped, a pread of the range must be all
 * zero: a page that reads the stamp was read from the blocks after the punch dropped
 * the cache and before it freed them, and stays cached over the hole.
 * --no-readahead: task 2 idles (the control: every round must read zero).
 * --persist: in a round that read the stamp, write one byte at the end of the first such
 * page (pwrite), fsync, drop the file's clean pages (POSIX_FADV_DONTNEED) and read the page
 * again: a stamp then is punched data written back to the file's blocks.
 * Exit 0: every round read zero; 1: some round read the stamp; 2: an error. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PG 4096
static int fd, pages, use_fadvise, no_readahead, persist;
static atomic_int punching, stop;

static void die(const char *what)
{
	perror(what);
	exit(2);
}

static void *reader(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		if (no_readahead || !atomic_load(&punching))
			continue;
		if (use_fadvise)
			posix_fadvise(fd, 0, (off_t)pages * PG, POSIX_FADV_WILLNEED);
		else if (readahead(fd, 0, (size_t)pages * PG) < 0)
			die("readahead");
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: %s FILE PAGES ROUNDS [--fadvise] [--no-readahead] "
			"[--persist]\n", argv[0]);
		return 2;
	}
	pages = atoi(argv[2]);
	long rounds = atol(argv[3]);
	for (int i = 4; i < argc; i++) {
		if (!strcmp(argv[i], "--fadvise"))
			use_fadvise = 1;
		else if (!strcmp(argv[i], "--no-readahead"))
			no_readahead = 1;
		else if (!strcmp(argv[i], "--persist"))
			persist = 1;
		else {
			fprintf(stderr, "unknown option %s\n", argv[i]);
			return 2;
		}
	}
	size_t len = (size_t)pages * PG;
	fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		die("open");
	char *buf = malloc(len), *back = malloc(len);
	pthread_t t;
	if (pthread_create(&t, NULL, reader, NULL))
		die("pthread_create");

	long stale_rounds = 0, stale_pages = 0, first = -1, on_disk = 0;
	for (long r = 0; r < rounds; r++) {
		memset(buf, 0x40 + (int)(r % 63) + 1, len);  /* never zero */
		if (pwrite(fd, buf, len, 0) != (ssize_t)len)
			die("pwrite");
		if (fsync(fd))
			die("fsync");
		atomic_store(&punching, 1);
		if (fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, (off_t)len))
			die("fallocate(PUNCH_HOLE)");
		atomic_store(&punching, 0);
		usleep(100);  /* let a readahead call that began before the store above end */
		if (pread(fd, back, len, 0) != (ssize_t)len)
			die("pread");
		int bad = 0, first_page = -1;
		for (int p = 0; p < pages; p++) {
			const char *pg = back + (size_t)p * PG;
			for (int i = 0; i < PG; i++)
				if (pg[i]) {
					if (!bad && first < 0) {
						first = r;
						printf("round %ld: page %d reads 0x%02x at byte %d after the punch "
						       "returned\n", r, p, (unsigned char)pg[i], i);
					}
					if (!bad)
						first_page = p;
					bad = 1;
					stale_pages++;
					break;
				}
		}
		stale_rounds += bad;
		if (bad && persist) {
			off_t at = (off_t)first_page * PG;
			char one = 1, again;
			if (pwrite(fd, &one, 1, at + PG - 1) != 1 || fsync(fd))
				die("pwrite/fsync");
			posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
			if (pread(fd, &again, 1, at) != 1)
				die("pread");
			on_disk += again != 0;
		}
	}
	atomic_store(&stop, 1);
	pthread_join(t, NULL);
	printf("%ld rounds of %d pages, %s: %ld rounds read pre-punch data (%ld pages)\n",
	       rounds, pages, no_readahead ? "no readahead (control)"
	       : use_fadvise ? "POSIX_FADV_WILLNEED" : "readahead(2)", stale_rounds, stale_pages);
	if (persist)
		printf("%ld of those rounds: the stamp read back after a one-byte write, fsync and "
		       "a cache drop\n", on_disk);
	return stale_rounds ? 1 : 0;
}
