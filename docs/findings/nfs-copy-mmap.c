/* Operations that replace a range's data on NFS v4.2 (copy_file_range between two files,
 * FICLONERANGE, PUNCH_HOLE) against mmap write faults on that range, checked without
 * fsrace's checker.
 * Each round puts marker(round) into every slot of page 0 of FILE.src (pwrite), and then:
 *   copy (the default): copies that page onto page 0 of FILE with copy_file_range
 *     (between two inodes the client offloads the copy to the server: COPY);
 *   clone: clones it there with FICLONERANGE (CLONE; the export must reflink: nfs-xfs);
 *   punch: writes the marker into FILE's page 0 and punches that page (DEALLOCATE);
 *   truncate: writes the marker into FILE's page 0, truncates FILE to 0 and back to one
 *     page (SETATTR twice); a store past EOF meanwhile raises SIGBUS, which is caught.
 * Meanwhile a second thread keeps storing to slot 1 of FILE's page 0 through a shared
 * mapping. After the operation returns, every slot but slot 1 must read the round's
 * marker (a hole reads 0): nothing else writes them. A round is stale when one of them
 * reads anything else (a marker, or FILE's initial contents).
 *   nfs-copy-mmap FILE ROUNDS [--op copy|clone|punch|truncate] [--no-faults] [--msync N]
 *                 [--server DIR | --direct] [--trace N]
 *                 [--load-modules NFS_KO NFSV4_KO]
 * --no-faults: no storing thread (the control).
 * --msync N: the storing thread also writes the page back (msync MS_SYNC) every N
 *   stores, as the flusher would: a punch or a truncate drops a dirtied page without
 *   laundering it, so only a writeback inside its window sends the page to the server.
 * --server DIR: DIR is the server's export holding FILE; after each operation also read
 *   the server's own file there, to see what the server kept.
 * --direct: read what the server kept through FILE itself, opened again with O_DIRECT
 *   (past the client's page cache: where the export is not reachable, as a 9p share).
 * Exit 1 if a round was stale, in the client's read or in the server's file.
 * --trace N: trace the first N rounds with the kernel's NFS trace events (the
 *   operation, nfs_setattr's start and end, the client's WRITEs and what started them),
 *   or on an SMB mount the SMB client's (SET_INFO EndOfFile and WRITEs), and print the
 *   trace.
 * --load-modules: first unmount the NFS mount holding FILE, unload the client's modules,
 *   load these two builds of nfs.ko and nfsv4.ko (say, a patched client built against
 *   the running kernel's headers) and mount it again as before. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
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
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PG 4096
#define SLOTS (PG / 8)
#define INITIAL 0x1111000000000000ull
#define TRACEFS "/sys/kernel/tracing"

static volatile uint64_t *map;
static atomic_int stop;
static long msync_every;

/* Events missing from a kernel are skipped: 6.1 has nfs_writeback_page_enter where
 * 6.12 has nfs_writeback_folio and nfs_launder_folio_done. */
static const char *events[] = {
	"nfs4/nfs4_copy", "nfs4/nfs4_clone", "nfs4/nfs4_deallocate", "nfs4/nfs4_setattr",
	"nfs/nfs_setattr_enter", "nfs/nfs_setattr_exit", "nfs/nfs_initiate_write",
	"nfs/nfs_writeback_done",
	"nfs/nfs_writeback_page_enter", "nfs/nfs_writeback_folio", "nfs/nfs_launder_folio_done",
	/* The SMB client's: the new end of file it sends, and its WRITEs. */
	"cifs/smb3_set_eof", "cifs/smb3_set_eof_enter", "cifs/smb3_set_eof_done",
	"cifs/smb3_write_enter", "cifs/smb3_write_done",
};

static void die(const char *what)
{
	perror(what);
	exit(2);
}

/* What the stores cost: a store that takes over 10 us took a fault. */
static uint64_t stores, slow_stores, slow_ns, longest_ns;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static __thread sigjmp_buf past_eof;

static void on_sigbus(int sig)
{
	(void)sig;
	siglongjmp(past_eof, 1);
}

static void *faulter(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop)) {
		if (sigsetjmp(past_eof, 1))
			continue;  /* the store was past EOF (a truncate's window) */
		uint64_t t0 = now_ns();
		map[1] = 0x57000000000000ull | ++stores;  /* slot 1 of page 0 only */
		uint64_t took = now_ns() - t0;
		if (msync_every && stores % (uint64_t)msync_every == 0)
			msync((void *)map, PG, MS_SYNC);  /* fails only past EOF: nothing to write */
		if (took > 10000) {
			slow_stores++;
			slow_ns += took;
			if (took > longest_ns)
				longest_ns = took;
		}
	}
	return NULL;
}

static uint64_t marker(long round)
{
	return 0x0cf2000000000000ull | (uint64_t)round;
}

/* 0: every slot but 1 holds `want`; 1: a marker (an older round's; for a punch, the
 * data punched); 2: the initial contents; 3: something else, or a file shorter than the
 * page (then `value` is its length). `value` gets the first wrong slot's value. */
static int classify(int fd, uint64_t want, uint64_t *value)
{
	static uint64_t buf[SLOTS] __attribute__((aligned(PG)));  /* O_DIRECT's alignment */
	ssize_t got = pread(fd, buf, PG, 0);
	if (got < 0)
		die("pread");
	if (got < PG) {
		*value = (uint64_t)got;
		return 3;
	}
	for (int s = 0; s < SLOTS; s++) {
		if (s == 1 || buf[s] == want)
			continue;
		*value = buf[s];
		if ((buf[s] >> 48) == (marker(0) >> 48))
			return 1;
		return buf[s] == (INITIAL | (uint64_t)s) ? 2 : 3;
	}
	return 0;
}

static void tracefs_write(const char *file, const char *text, int may_be_missing)
{
	char path[256];
	snprintf(path, sizeof(path), TRACEFS "/%s", file);
	int fd = open(path, O_WRONLY | O_TRUNC);
	if (fd < 0 && errno == ENOENT && may_be_missing)
		return;
	if (fd < 0 || write(fd, text, strlen(text)) < 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		exit(2);
	}
	close(fd);
}

static void trace_on(int on)
{
	char file[128];
	struct stat st;
	if (on && stat(TRACEFS "/events", &st) != 0 &&
	    mount("tracefs", TRACEFS, "tracefs", 0, NULL) != 0)
		die("mount tracefs");
	for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++) {
		snprintf(file, sizeof(file), "events/%s/enable", events[i]);
		tracefs_write(file, on ? "1" : "0", 1);
	}
	if (on)
		tracefs_write("trace", "", 0);
	tracefs_write("tracing_on", on ? "1" : "0", 0);
}

static void trace_mark(const char *text)
{
	int fd = open(TRACEFS "/trace_marker", O_WRONLY);
	if (fd >= 0) {
		if (write(fd, text, strlen(text)) < 0)
			perror("trace_marker");
		close(fd);
	}
}

static void trace_print(void)
{
	char buf[65536];
	ssize_t n;
	int fd = open(TRACEFS "/trace", O_RDONLY);
	if (fd < 0)
		die("open trace");
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		fwrite(buf, 1, (size_t)n, stdout);
	close(fd);
}

static void run(const char *cmd)
{
	int status = system(cmd);
	if (status != 0) {
		fprintf(stderr, "%s: exit status %d\n", cmd, status);
		exit(2);
	}
}

/* Unmount the NFS mount that holds `file`, replace the client's modules with these
 * builds, and mount it again with the same source and NFS version. */
static void load_modules(const char *file, const char *nfs_ko, const char *nfsv4_ko)
{
	char dev[512] = "", mnt[512] = "", type[64] = "", opts[2048] = "", line[4096];
	char d[512], m[512], t[64], o[2048], cmd[2048], vers[32] = "4.2";
	size_t best = 0;
	FILE *mounts = fopen("/proc/mounts", "r");
	if (!mounts)
		die("/proc/mounts");
	while (fgets(line, sizeof(line), mounts))
		if (sscanf(line, "%511s %511s %63s %2047s", d, m, t, o) == 4 &&
		    !strncmp(t, "nfs", 3) && !strncmp(file, m, strlen(m)) && strlen(m) > best) {
			best = strlen(m);
			strcpy(dev, d), strcpy(mnt, m), strcpy(type, t), strcpy(opts, o);
		}
	fclose(mounts);
	if (!best) {
		fprintf(stderr, "%s is not on an NFS mount\n", file);
		exit(2);
	}
	char *v = strstr(opts, "vers=");
	if (v)
		sscanf(v + 5, "%31[^,]", vers);
	snprintf(cmd, sizeof(cmd), "umount %s", mnt);
	run(cmd);
	/* what may hold nfs and nfsv4; the layout drivers load only with pNFS */
	int not_loaded = system("rmmod nfs_layout_flexfiles nfs_layout_nfsv41_files nfsv3 "
				"2>/dev/null");
	(void)not_loaded;
	run("rmmod nfsv4");
	run("rmmod nfs");
	const char *mods[] = {nfs_ko, nfsv4_ko};
	for (int i = 0; i < 2; i++) {
		int fd = open(mods[i], O_RDONLY);
		if (fd < 0 || syscall(SYS_finit_module, fd, "", 0) != 0)
			die(mods[i]);
		close(fd);
	}
	snprintf(cmd, sizeof(cmd), "mount -t %s -o vers=%s %s %s", type, vers, dev, mnt);
	run(cmd);
	printf("loaded %s and %s; %s mounted again on %s (%s, vers=%s)\n", nfs_ko, nfsv4_ko,
	       dev, mnt, type, vers);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s FILE ROUNDS [--op copy|clone|punch|truncate] "
			"[--no-faults] [--msync N] [--server DIR | --direct] [--trace N] "
			"[--load-modules NFS_KO NFSV4_KO]\n", argv[0]);
		return 2;
	}
	long rounds = atol(argv[2]), traced = 0;
	int faults = 1, direct = 0;
	const char *server = NULL, *nfs_ko = NULL, *nfsv4_ko = NULL, *op = "copy";
	for (int i = 3; i < argc; i++) {
		if (!strcmp(argv[i], "--no-faults"))
			faults = 0;
		else if (!strcmp(argv[i], "--server") && i + 1 < argc)
			server = argv[++i];
		else if (!strcmp(argv[i], "--direct"))
			direct = 1;
		else if (!strcmp(argv[i], "--trace") && i + 1 < argc)
			traced = atol(argv[++i]);
		else if (!strcmp(argv[i], "--op") && i + 1 < argc)
			op = argv[++i];
		else if (!strcmp(argv[i], "--msync") && i + 1 < argc)
			msync_every = atol(argv[++i]);
		else if (!strcmp(argv[i], "--load-modules") && i + 2 < argc) {
			nfs_ko = argv[++i];
			nfsv4_ko = argv[++i];
		}
		else {
			fprintf(stderr, "unknown argument %s\n", argv[i]);
			return 2;
		}
	}
	if (strcmp(op, "copy") && strcmp(op, "clone") && strcmp(op, "punch") &&
	    strcmp(op, "truncate")) {
		fprintf(stderr, "--op: copy, clone, punch or truncate, not %s\n", op);
		return 2;
	}
	/* what every slot but 1 must read after the operation: the noun for the output */
	const char *result = !strcmp(op, "punch") ? "the hole" : !strcmp(op, "truncate") ?
		"zeros" : !strcmp(op, "clone") ? "the clone" : "the copy";
	if (nfs_ko)
		load_modules(argv[1], nfs_ko, nfsv4_ko);
	char src_name[4096], server_name[4096];
	snprintf(src_name, sizeof(src_name), "%s.src", argv[1]);
	int fd = open(argv[1], O_RDWR | O_CREAT | O_TRUNC, 0644);
	int sfd = open(src_name, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || sfd < 0)
		die("open");
	uint64_t page[SLOTS];
	for (int s = 0; s < SLOTS; s++)
		page[s] = INITIAL | (uint64_t)s;
	if (pwrite(fd, page, PG, 0) != PG || pwrite(sfd, page, PG, 0) != PG)
		die("pwrite");
	if (fsync(fd) || fsync(sfd))
		die("fsync");
	int server_fd = -1;
	if (server) {
		char copy[4096];
		snprintf(copy, sizeof(copy), "%s", argv[1]);
		snprintf(server_name, sizeof(server_name), "%s/%s", server, basename(copy));
		server_fd = open(server_name, O_RDONLY);
		if (server_fd < 0)
			die(server_name);
	} else if (direct) {
		server_fd = open(argv[1], O_RDONLY | O_DIRECT);
		if (server_fd < 0)
			die("open O_DIRECT");
	}
	map = mmap(NULL, PG, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED)
		die("mmap");
	struct sigaction sa = {.sa_handler = on_sigbus, .sa_flags = SA_NODEFER};
	if (sigaction(SIGBUS, &sa, NULL))
		die("sigaction");
	pthread_t thread;
	if (faults && pthread_create(&thread, NULL, faulter, NULL))
		die("pthread_create");
	long client[4] = {0}, on_server[4] = {0};  /* rounds by classify()'s answer */
	int in_file = !strcmp(op, "punch") || !strcmp(op, "truncate");  /* no FILE.src */
	if (traced)
		trace_on(1);
	for (long r = 1; r <= rounds; r++) {
		char note[128];
		uint64_t value = 0;
		for (int s = 0; s < SLOTS; s++)
			page[s] = marker(r);
		if (pwrite(in_file ? fd : sfd, page, PG, 0) != PG)
			die("pwrite");
		if (r <= traced) {
			snprintf(note, sizeof(note), "round %ld: %s begins", r, op);
			trace_mark(note);
		}
		uint64_t want = marker(r);
		long done;
		if (!strcmp(op, "copy")) {
			loff_t in = 0, out = 0;
			done = copy_file_range(sfd, &in, fd, &out, PG, 0) == PG ? 0 : -1;
		} else if (!strcmp(op, "clone")) {
			struct file_clone_range range = {.src_fd = sfd, .src_length = PG};
			done = ioctl(fd, FICLONERANGE, &range);
		} else if (!strcmp(op, "punch")) {
			done = fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, PG);
			want = 0;
		} else {
			done = ftruncate(fd, 0) || ftruncate(fd, PG);
			want = 0;
		}
		if (done != 0) {
			fprintf(stderr, "round %ld: %s failed or fell short: %s\n", r, op,
				strerror(errno));
			return 2;
		}
		int c = classify(fd, want, &value);
		client[c]++;
		if (c && (r - client[0] <= 3 || r <= traced))  /* the first three stale rounds */
			printf("round %ld: the client read %#llx, not %s\n", r,
			       (unsigned long long)value, result);
		if (server_fd >= 0) {
			int s = classify(server_fd, want, &value);
			on_server[s]++;
			if (s && (r - on_server[0] <= 3 || r <= traced))
				printf("round %ld: the server's file holds %#llx, not %s\n", r,
				       (unsigned long long)value, result);
		}
		if (r <= traced) {
			snprintf(note, sizeof(note), "round %ld: %s returned, read %s", r, op,
				 c ? "stale" : result);
			trace_mark(note);
		}
		if (r == traced) {
			trace_on(0);
			trace_print();
		}
	}
	atomic_store(&stop, 1);
	if (faults)
		pthread_join(thread, NULL);
	printf("%ld rounds of %s, %s: the client read %s in %ld, a marker in %ld, the initial "
	       "contents in %ld, something else in %ld\n", rounds, op,
	       faults ? "stores to slot 1 meanwhile" : "no stores", result, client[0],
	       client[1], client[2], client[3]);
	if (faults)
		printf("stores %llu, of which %llu took over 10 us (faults): %.0f us on average, "
		       "the longest %.1f ms\n", (unsigned long long)stores,
		       (unsigned long long)slow_stores,
		       slow_stores ? slow_ns / 1e3 / (double)slow_stores : 0.0, longest_ns / 1e6);
	if (server_fd >= 0)
		printf("the server's file held %s in %ld, a marker in %ld, the initial contents in "
		       "%ld, something else in %ld\n", result, on_server[0], on_server[1],
		       on_server[2], on_server[3]);
	/* stale on either side: what the server kept counts as much as what the client read */
	return client[0] == rounds && (server_fd < 0 || on_server[0] == rounds) ? 0 : 1;
}
