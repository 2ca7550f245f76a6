/* copy_file_range against mmap write faults on the destination, checked without fsrace's
 * checker (written for the SMB client; any file system that copies within a file).
 * Each round: the source pages (2, or 2-3 with --two-pages) get marker(round, page) in
 * every slot (pwrite), then they are copied onto pages 0 (-1) while a second thread keeps
 * storing to slot 1 of the destination pages through a shared mapping. After the copy
 * returns, every slot of each destination page but slot 1 must read the source's marker
 * of this round: nothing else writes them. Counts rounds where one read 0, an older
 * round's marker, or anything else (the file's initial contents, also older).
 *   smb-copy-mmap FILE ROUNDS [--no-faults] [--serial] [--two-pages] [--other-file]
 * --serial: no thread; the same stores made by the copying thread after each copy.
 * --other-file: the source pages are those of a second file, FILE.src (the NFS client
 * offloads a copy to the server only between two inodes). */
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

#define PG 4096
#define SLOTS (PG / 8)
static int fd, sfd, npages = 1;  /* sfd: the file the source pages are in */
static volatile uint64_t *map;
static atomic_int stop;

static void *faulter(void *arg)
{
	uint64_t n = 0;
	(void)arg;
	while (!atomic_load(&stop))
		for (int p = 0; p < npages; p++)  /* slot 1 of the destination pages only */
			map[p * SLOTS + 1] = 0x57000000000000ull | ++n;
	return NULL;
}

static uint64_t marker(long round, int page)
{
	return 0x0cf2000000000000ull | (round << 8) | page;
}

static int copy_pages(int src, int dst)  /* the whole range, or -1 */
{
	loff_t in = (loff_t)src * PG, out = (loff_t)dst * PG;
	ssize_t n = copy_file_range(sfd, &in, fd, &out, (size_t)npages * PG, 0);
	return n == (ssize_t)npages * PG ? 0 : -1;
}

/* 0: each destination page p holds marker(round, 2 + p) everywhere but slot 1; else
 * 1 zero, 2 an older marker, 3 other */
static int check(long round, long *bad_page, long *bad_slot, uint64_t *value)
{
	uint64_t buf[SLOTS];
	for (int p = 0; p < npages; p++) {
		if (pread(fd, buf, PG, (off_t)p * PG) != PG) {
			perror("pread");
			exit(2);
		}
		for (int s = 0; s < SLOTS; s++) {
			if (s == 1 || buf[s] == marker(round, 2 + p))
				continue;
			*bad_page = p;
			*bad_slot = s;
			*value = buf[s];
			if (!buf[s])
				return 1;
			return (buf[s] >> 48) == 0x0cf2 ? 2 : 3;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	int faults = 1, serial = 0, other = 0;
	for (int i = 3; i < argc; i++) {
		if (!strcmp(argv[i], "--no-faults"))
			faults = 0;
		else if (!strcmp(argv[i], "--serial"))
			serial = 1, faults = 0;
		else if (!strcmp(argv[i], "--two-pages"))
			npages = 2;
		else if (!strcmp(argv[i], "--other-file"))
			other = 1;
		else
			argc = 0;
	}
	if (argc < 3) {
		fprintf(stderr, "usage: %s FILE ROUNDS [--no-faults] [--serial] [--two-pages] "
			"[--other-file]\n", argv[0]);
		return 2;
	}
	long rounds = atol(argv[2]), bad[4] = { 0 }, refused = 0;
	char src[4096];
	snprintf(src, sizeof(src), "%s.src", argv[1]);
	fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
	sfd = other ? open(src, O_RDWR | O_CREAT | O_TRUNC, 0644) : fd;
	if (fd < 0 || sfd < 0 || ftruncate(fd, 4 * PG) < 0 || ftruncate(sfd, 4 * PG) < 0) {
		perror(argv[1]);
		return 2;
	}
	uint64_t page[SLOTS];
	for (int f = 0; f < 1 + other; f++)
		for (int p = 0; p < 4; p++) {  /* data everywhere, no holes */
			for (int s = 0; s < SLOTS; s++)
				page[s] = 0x1111000000000000ull | p;
			if (pwrite(f ? sfd : fd, page, PG, (off_t)p * PG) != PG) {
				perror("pwrite");
				return 2;
			}
		}
	fsync(fd);
	fsync(sfd);
	map = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		perror("mmap");
		return 2;
	}
	pthread_t t;
	if (faults)
		pthread_create(&t, NULL, faulter, NULL);
	for (long r = 1; r <= rounds; r++) {
		for (int p = 2; p < 2 + npages; p++) {
			for (int s = 0; s < SLOTS; s++)
				page[s] = marker(r, p);
			if (pwrite(sfd, page, PG, (off_t)p * PG) != PG) {
				perror("pwrite");
				return 2;
			}
		}
		if (copy_pages(2, 0) < 0) {
			refused++;
			continue;
		}
		if (serial)
			for (int p = 0; p < npages; p++)
				map[p * SLOTS + 1] = r;
		long pg = -1, slot = -1;
		uint64_t value = 0;
		int k = check(r, &pg, &slot, &value);
		if (k && bad[1] + bad[2] + bad[3] < 5)
			printf("round %ld: page %ld slot %ld read %llx: %s\n", r, pg, slot,
			       (unsigned long long)value,
			       k == 1 ? "zero" : k == 2 ? "an older round's marker" : "other");
		bad[k]++;
	}
	atomic_store(&stop, 1);
	if (faults)
		pthread_join(t, NULL);
	printf("%ld rounds, %ld copies refused or short: %ld clean, %ld zero, %ld stale, "
	       "%ld other\n", rounds, refused, bad[0], bad[1], bad[2], bad[3]);
	return bad[1] + bad[2] + bad[3] ? 1 : 0;
}
