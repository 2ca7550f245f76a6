/*
 * Clone a page onto a file and fsync it, ROUNDS times: what a clone and the fsync after it
 * cost, for `fsrace vm-run --fs btrfs [--module btrfs.ko] bench/btrfs-clone-cost.c --args
 * ROUNDS` (docs/benchmarks.md). FILE and FILE.src get 64 pages each, written back; clone r
 * puts FILE.src's page 7r mod 64 on FILE's page r mod 64.
 *
 *   btrfs-clone-cost FILE ROUNDS
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	char path[4096], page[4096];
	int rounds = argc > 2 ? atoi(argv[2]) : 0, dst, src;
	double clone_s = 0, fsync_s = 0, t;

	if (rounds <= 0)
		return 2;
	snprintf(path, sizeof path, "%s.src", argv[1]);
	dst = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
	src = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	for (int p = 0; p < 64; p++) {
		memset(page, 'a' + p % 26, sizeof page);
		if (pwrite(src, page, sizeof page, p * 4096L) != 4096 ||
		    pwrite(dst, page, sizeof page, p * 4096L) != 4096)
			return 2;
	}
	if (fsync(src) || fsync(dst))
		return 2;
	for (int r = 0; r < rounds; r++) {
		struct file_clone_range one = { .src_fd = src, .src_offset = (r * 7 % 64) * 4096L,
						.src_length = 4096, .dest_offset = (r % 64) * 4096L };

		t = now();
		if (ioctl(dst, FICLONERANGE, &one))
			return 2;
		clone_s += now() - t;
		t = now();
		if (fsync(dst))
			return 2;
		fsync_s += now() - t;
	}
	printf("%d clones of a page: clone %.0f us, fsync after it %.0f us (means)\n", rounds,
	       clone_s / rounds * 1e6, fsync_s / rounds * 1e6);
	return 0;
}
