/* A truncate into a compressed f2fs cluster, then growing the file back: the page cut off
 * must read zeros. No other task runs. Each round writes four pages of words marked with
 * the round (one f2fs cluster of four pages; with "sync", fsync compresses it to disk),
 * truncates to three pages, truncates back to four, and reads page 3 with pread.
 * With "twice", it truncates to two pages, grows to three and then four, and drops the
 * clean page cache (/proc/sys/vm/drop_caches) before the pread: page 3 is then read from
 * the compressed cluster on disk, whatever the truncates left in the cache.
 *   f2fs-compress-truncate FILE ROUNDS [sync|nosync] [twice]
 * Exit 1 if page 3 held old data in some round. FILE must be compressed (chattr +c on
 * its folder, on an f2fs made with -O extra_attr,compression). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PG 4096
#define WORDS (PG / 8)

int main(int argc, char **argv)
{
	static uint64_t file[4 * WORDS], page[WORDS];
	int rounds, sync_first, stale = 0;

	if (argc < 3 || (argc > 3 && strcmp(argv[3], "sync") && strcmp(argv[3], "nosync")) ||
	    (argc > 4 && strcmp(argv[4], "twice"))) {
		fprintf(stderr, "usage: %s FILE ROUNDS [sync|nosync] [twice]\n", argv[0]);
		return 2;
	}
	rounds = atoi(argv[2]);
	sync_first = argc > 3 && !strcmp(argv[3], "sync");
	int twice = argc > 4;
	int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		perror(argv[1]);
		return 2;
	}
	for (int r = 0; r < rounds; r++) {
		for (int w = 0; w < 4 * WORDS; w++)
			file[w] = 0xab00000000000000ull | (uint64_t)r << 16 | (uint64_t)w;
		if (ftruncate(fd, 0) || pwrite(fd, file, sizeof(file), 0) != sizeof(file)) {
			perror("write");
			return 2;
		}
		if (sync_first && fsync(fd)) {
			perror("fsync");
			return 2;
		}
		if (twice ? ftruncate(fd, 2 * PG) || ftruncate(fd, 3 * PG) || ftruncate(fd, 4 * PG)
			  : ftruncate(fd, 3 * PG) || ftruncate(fd, 4 * PG)) {
			perror("truncate");
			return 2;
		}
		if (twice) {
			int drop = open("/proc/sys/vm/drop_caches", O_WRONLY);
			if (drop < 0 || write(drop, "1", 1) != 1) {
				perror("drop_caches");
				return 2;
			}
			close(drop);
		}
		if (pread(fd, page, PG, 3 * PG) != PG) {
			perror("pread");
			return 2;
		}
		int old = 0;
		for (int w = 0; w < WORDS; w++)
			old += page[w] != 0;
		if (old && stale++ < 3)
			printf("round %d: page 3 has %d nonzero words after the truncate (word 0 %#llx)\n",
			       r, old, (unsigned long long)page[0]);
	}
	printf("%s%s: %d of %d rounds left page 3's old data after truncating it off and "
	       "growing back\n", sync_first ? "fsync first" : "no fsync",
	       twice ? ", two pages then three (cache dropped)" : "", stale, rounds);
	return stale ? 1 : 0;
}
