/* truncate (shrink, then grow back) against mmap stores into the page cut off.
 * Each round: page 3 of a 4-page file gets marker(round) in every slot (pwrite, fsync),
 * then the file is truncated to 3 pages and back to 4 while a second thread keeps storing
 * to slot 0 of page 3 through a shared mapping (a store past EOF raises SIGBUS: caught,
 * the thread goes on). Afterwards slot 1 of page 3 must read 0: the truncate zeroed it
 * and nothing writes slot 1. Counts rounds where it still holds a marker.
 *   nfs-truncate-mmap FILE ROUNDS [--no-faults] [--msync] */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define PG 4096
#define SLOTS (PG / 8)
static volatile uint64_t *map;
static atomic_int stop;
static int do_msync;
static __thread sigjmp_buf past_eof;

static void on_sigbus(int sig)
{
	(void)sig;
	siglongjmp(past_eof, 1);
}

static void *faulter(void *arg)
{
	volatile uint64_t n = 0;
	(void)arg;
	while (!atomic_load(&stop)) {
		if (sigsetjmp(past_eof, 0))
			continue;
		map[3 * SLOTS] = 0x5700000000000000ull | ++n;  /* slot 0 of page 3 only */
		if (do_msync)
			msync((void *)(map + 3 * SLOTS), PG, MS_ASYNC);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	int faults = 1;
	for (int i = 3; i < argc; i++) {
		if (!strcmp(argv[i], "--no-faults"))
			faults = 0;
		else if (!strcmp(argv[i], "--msync"))
			do_msync = 1;
		else
			argc = 0;
	}
	if (argc < 3) {
		fprintf(stderr, "usage: %s FILE ROUNDS [--no-faults] [--msync]\n", argv[0]);
		return 2;
	}
	long rounds = atol(argv[2]), bad = 0;
	int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, 4 * PG) < 0) {
		perror(argv[1]);
		return 2;
	}
	map = mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	struct sigaction sa = { .sa_handler = on_sigbus, .sa_flags = SA_NODEFER };
	sigaction(SIGBUS, &sa, NULL);
	pthread_t t;
	if (faults)
		pthread_create(&t, NULL, faulter, NULL);
	uint64_t page[SLOTS];
	for (long r = 1; r <= rounds; r++) {
		for (int s = 0; s < SLOTS; s++)
			page[s] = 0x7c00000000000000ull | r;
		if (pwrite(fd, page, PG, 3 * PG) != PG || fsync(fd) < 0) {
			perror("pwrite");
			return 2;
		}
		if (ftruncate(fd, 3 * PG) < 0 || ftruncate(fd, 4 * PG) < 0) {
			perror("ftruncate");
			return 2;
		}
		uint64_t got;
		if (pread(fd, &got, 8, 3 * PG + 8) != 8) {
			perror("pread");
			return 2;
		}
		if (got && bad++ < 5)
			printf("round %ld: page 3 slot 1 holds %#llx after the truncate\n", r,
			       (unsigned long long)got);
	}
	atomic_store(&stop, 1);
	if (faults)
		pthread_join(t, NULL);
	printf("%ld rounds, %ld with page 3 slot 1 not zero after the truncate\n", rounds, bad);
	return bad ? 1 : 0;
}
