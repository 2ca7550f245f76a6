/* fsrace stress worker: one process with its own shared mapping of the file, running an
 * operation stream drawn by fsrace (fsrace/stress/ops.py) and recording, for each operation,
 * when it was invoked and when it returned (CLOCK_MONOTONIC, the same clock in every
 * process), its result and what it read.
 *
 *   worker FILE OTHER PAGES DEADLINE_NS (W OPS LOG DATA)...
 *   worker --bare FILE PAGES OPS SECONDS     (no record: the benchmark's baseline)
 *
 * OTHER is a second file of the same size on the same file system, which the operations
 * between two files copy and clone from and into.
 *
 * Each group of four runs stream W in a thread of its own; the threads share the mapping
 * (one address space, as two tasks of one process).
 * OPS: records of six little-endian uint32 (kind, page, slot, npages, size, src), kinds
 * numbered as ops.KINDS. LOG and DATA are mapped shared, so a worker killed by a signal
 * loses nothing: its last operation shows as invoked and never returned. LOG: four int64
 * words per operation (invoked ns, returned ns, result: bytes read, 0, -errno or PAST_EOF;
 * the value a load read). DATA: a page per page-reading operation (pread, direct read), in
 * stream order, for what it read. The worker says "ready" on stdout once set up and starts
 * when a byte arrives on stdin, with the others. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
#define WORDS 4  /* per operation in LOG */
#define SLOTS (PAGE / 8)
#define INIT_WORKER 0xff
/* The result of a store or load that raised SIGBUS: the file was shorter than the mapping
 * (another worker's truncate), so the access did nothing. As worker.PAST_EOF. */
#define PAST_EOF (-((int64_t)1 << 32))

enum { STORE, LOAD, PREAD, PWRITE, PUNCH, ZERO, TRUNCATE, FSYNC, MSYNC, WILLNEED, DONTNEED,
       DIO_READ, DIO_WRITE, COLLAPSE, INSERT, COPY, CLONE, DEDUPE, COPY_FROM, CLONE_FROM,
       COPY_TO, CLONE_TO, WRITEBACK };
struct op { uint32_t kind, page, slot, npages, size, src; };

struct file {
	int fd, dfd;  /* dfd: O_DIRECT, -1 where the file system has none */
	int ofd;  /* the other file; -1 in the bare mode */
	size_t size;
	volatile uint64_t *map;
	uint64_t *buf;  /* page-aligned, for O_DIRECT: one per thread */
};

static int64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static uint64_t stamp(uint64_t worker, uint64_t index)  /* as ops.stamp */
{
	return (0x5aull << 56) | (worker << 40) | (index + 1);
}

#define CHECK(call) ((call) < 0 ? -errno : 0)

/* Where a SIGBUS in this thread's mapping access returns to; NULL outside one. The
 * handler runs with SIGBUS unblocked (SA_NODEFER), so jumping out of it needs no saved
 * signal mask, and an access costs no system call. Volatile, as the mapping is: the
 * compiler must set it before the access and clear it after, in that order. */
static __thread sigjmp_buf *volatile past_eof;

static void on_sigbus(int sig)
{
	if (!past_eof) {  /* not one of ours: die of it as if unhandled */
		signal(sig, SIG_DFL);
		raise(sig);
	}
	siglongjmp(*past_eof, 1);
}

static void catch_sigbus(void)
{
	struct sigaction sa = { .sa_handler = on_sigbus, .sa_flags = SA_NODEFER };
	sigaction(SIGBUS, &sa, NULL);
}

static int64_t copy_range(int from, off_t src, int to, off_t dst, off_t len)
{
	loff_t in = src, out = dst;
	ssize_t n = copy_file_range(from, &in, to, &out, len, 0);
	return n < 0 ? -errno : n;  /* bytes copied: a copy may stop short */
}

static int64_t clone_range(int from, off_t src, int to, off_t dst, off_t len)
{
	struct file_clone_range r = { .src_fd = from, .src_offset = src,
				      .src_length = len, .dest_offset = dst };
	return CHECK(ioctl(to, FICLONERANGE, &r));
}

/* Run one operation; `out` (may be NULL) receives what it read. The result: bytes read,
 * 0, -errno, or PAST_EOF for a store or load that raised SIGBUS. */
static int64_t run(struct file *f, const struct op *o, uint64_t value, char *out)
{
	off_t off = (off_t)o->page * PAGE, len = (off_t)o->npages * PAGE;
	off_t src = (off_t)o->src * PAGE;
	ssize_t n;

	switch (o->kind) {
	case STORE:
	case LOAD: {  /* out: the LOG record's last word for a load */
		sigjmp_buf jb;
		if (sigsetjmp(jb, 0)) {
			past_eof = NULL;
			return PAST_EOF;
		}
		past_eof = &jb;
		if (o->kind == STORE)
			f->map[off / 8 + o->slot] = value;
		else {
			uint64_t v = f->map[off / 8 + o->slot];
			if (out)
				memcpy(out, &v, 8);
		}
		past_eof = NULL;
		return o->kind == STORE ? 0 : 8;
	}  /* out for the page reads: a DATA page */
	case PREAD:
		n = pread(f->fd, out ? out : (char *)f->buf, PAGE, off);
		return n < 0 ? -errno : n;
	case PWRITE:
		return CHECK(pwrite(f->fd, &value, 8, off + o->slot * 8));
	case PUNCH:
		return CHECK(fallocate(f->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len));
	case ZERO:  /* the range lies inside the file, so KEEP_SIZE changes nothing; NFS v4.2
		     * (nfs42_fallocate, 7.x) takes ZERO_RANGE only without it */
		if (fallocate(f->fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, off, len) == 0)
			return 0;
		if (errno != EOPNOTSUPP)
			return -errno;
		return CHECK(fallocate(f->fd, FALLOC_FL_ZERO_RANGE, off, len));
	case TRUNCATE:  /* shrink, then restore the size for the other workers' mappings */
		if (ftruncate(f->fd, o->size) < 0)
			return -errno;
		return CHECK(ftruncate(f->fd, f->size));
	case FSYNC:
		return CHECK(fsync(f->fd));
	case MSYNC:
		return CHECK(msync((char *)f->map + off, len, MS_SYNC));
	case WRITEBACK:  /* start it, as the flusher does: no ->fsync, no inode lock */
		return CHECK(sync_file_range(f->fd, off, len, SYNC_FILE_RANGE_WRITE));
	case WILLNEED:
		return -posix_fadvise(f->fd, off, len, POSIX_FADV_WILLNEED);
	case DONTNEED:
		return -posix_fadvise(f->fd, off, len, POSIX_FADV_DONTNEED);
	case DIO_READ:
		if (f->dfd < 0)
			return -EINVAL;
		n = pread(f->dfd, f->buf, PAGE, off);
		if (n > 0 && out)
			memcpy(out, f->buf, n);
		return n < 0 ? -errno : n;
	case DIO_WRITE:
		if (f->dfd < 0)
			return -EINVAL;
		for (int i = 0; i < SLOTS; i++)
			f->buf[i] = value;
		return CHECK(pwrite(f->dfd, f->buf, PAGE, off));
	case COLLAPSE:  /* then back to the old size, as a truncate */
		if (fallocate(f->fd, FALLOC_FL_COLLAPSE_RANGE, off, len) < 0)
			return -errno;
		return CHECK(ftruncate(f->fd, f->size));
	case INSERT:
		if (fallocate(f->fd, FALLOC_FL_INSERT_RANGE, off, len) < 0)
			return -errno;
		return CHECK(ftruncate(f->fd, f->size));
	case COPY:
		return copy_range(f->fd, src, f->fd, off, len);
	case CLONE:
		return clone_range(f->fd, src, f->fd, off, len);
	case COPY_FROM:
		return copy_range(f->ofd, src, f->fd, off, len);
	case CLONE_FROM:
		return clone_range(f->ofd, src, f->fd, off, len);
	case COPY_TO:
		return copy_range(f->fd, src, f->ofd, off, len);
	case CLONE_TO:
		return clone_range(f->fd, src, f->ofd, off, len);
	case DEDUPE: {  /* bytes now shared, 0 if the ranges differed */
		struct {
			struct file_dedupe_range r;
			struct file_dedupe_range_info i;
		} d;
		memset(&d, 0, sizeof(d));
		d.r.src_offset = src;
		d.r.src_length = len;
		d.r.dest_count = 1;
		d.i.dest_fd = f->fd;
		d.i.dest_offset = off;
		if (ioctl(f->fd, FIDEDUPERANGE, &d) < 0)
			return -errno;
		if (d.i.status < 0)
			return d.i.status;
		return d.i.status == FILE_DEDUPE_RANGE_DIFFERS ? 0 : (int64_t)d.i.bytes_deduped;
	}
	}
	return -EINVAL;
}

static void die(const char *what, const char *arg)
{
	fprintf(stderr, "fsrace worker: %s %s: %s\n", what, arg, strerror(errno));
	exit(2);
}

static void *map_file(const char *path, size_t *len, int prot)
{
	int fd = open(path, prot & PROT_WRITE ? O_RDWR : O_RDONLY);
	if (fd < 0)
		die("cannot open", path);
	off_t end = lseek(fd, 0, SEEK_END);
	/* Writable ones are the records: their pages are allocated now, not in the run. */
	int flags = MAP_SHARED | (prot & PROT_WRITE ? MAP_POPULATE : 0);
	void *p = end > 0 ? mmap(NULL, end, prot, flags, fd, 0) : NULL;
	if (p == MAP_FAILED || !p)
		die("cannot map", path);
	close(fd);
	*len = end;
	return p;
}

static void open_file(struct file *f, const char *path, const char *other, int pages)
{
	f->size = (size_t)pages * PAGE;
	f->fd = open(path, O_RDWR);
	if (f->fd < 0)
		die("cannot open", path);
	f->ofd = other ? open(other, O_RDWR) : -1;
	if (other && f->ofd < 0)
		die("cannot open", other);
	f->dfd = open(path, O_RDWR | O_DIRECT);  /* tmpfs and friends: none */
	/* A mapping may outlast the file's size (a truncate between its halves): an access
	 * there is the SIGBUS the parent reports. */
	f->map = mmap(NULL, f->size, PROT_READ | PROT_WRITE, MAP_SHARED, f->fd, 0);
	if (f->map == MAP_FAILED)
		die("cannot map", path);
	if (posix_memalign((void **)&f->buf, PAGE, PAGE))
		die("out of memory", "");
	memset(f->buf, 0, PAGE);
}

static int bare(char **argv)
{
	struct file f;
	size_t len;
	open_file(&f, argv[0], NULL, atoi(argv[1]));
	const struct op *ops = map_file(argv[2], &len, PROT_READ);
	size_t n = len / sizeof(struct op);
	int64_t start = now_ns(), end = start + (int64_t)(atof(argv[3]) * 1e9);
	long executed = 0, refused = 0;
	/* Alone, a process never faults past EOF (its truncates grow the file back before
	 * its next store); beside another, it can: such an access counts as refused. */
	for (size_t i = 0; i < n && (i & 63 || now_ns() < end); i++) {
		if (run(&f, &ops[i], stamp(0, i), NULL) < 0)
			refused++;
		else
			executed++;
	}
	printf("%ld %ld %.3f\n", executed, refused, (now_ns() - start) / 1e9);
	return 0;
}

static int reads_page(const struct op *o)
{
	return o->kind == PREAD || o->kind == DIO_READ;
}

struct stream {
	struct file f;  /* a copy per thread: its own direct I/O buffer, the same mapping */
	uint64_t w;
	size_t n;
	int64_t deadline;
	const struct op *ops;
	int64_t *log;
	char *data;
};

static struct stream *open_stream(const struct file *f, char **arg, int64_t deadline)
{
	struct stream *s = calloc(1, sizeof(*s));
	size_t len, loglen, datalen, pages = 0;
	if (!s || posix_memalign((void **)&s->f.buf, PAGE, PAGE))
		die("out of memory", "");
	s->f = (struct file){ f->fd, f->dfd, f->ofd, f->size, f->map, s->f.buf };
	s->w = strtoull(arg[0], NULL, 10);
	s->ops = map_file(arg[1], &len, PROT_READ);
	s->log = map_file(arg[2], &loglen, PROT_READ | PROT_WRITE);
	s->data = map_file(arg[3], &datalen, PROT_READ | PROT_WRITE);
	s->n = len / sizeof(struct op);
	s->deadline = deadline;
	for (size_t i = 0; i < s->n; i++)
		pages += reads_page(&s->ops[i]);
	if (loglen < s->n * WORDS * 8 || datalen < pages * PAGE) {
		fprintf(stderr, "fsrace worker: %s or %s too short\n", arg[2], arg[3]);
		exit(2);
	}
	return s;
}

static void *run_stream(void *arg)
{
	struct stream *s = arg;
	size_t page = 0;
	for (size_t i = 0; i < s->n; i++) {
		volatile int64_t *rec = s->log + i * WORDS;
		char *out = reads_page(&s->ops[i]) ? s->data + page++ * PAGE
						   : (char *)(s->log + i * WORDS + 3);
		int64_t t = now_ns();
		if (s->deadline && t > s->deadline)
			break;
		rec[0] = t;
		/* The operation's effect lies between the two times: full fences keep its
		 * loads and stores (and the record) from moving across them. */
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		int64_t res = run(&s->f, &s->ops[i], stamp(s->w, i), out);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		rec[2] = res;
		rec[1] = now_ns();
	}
	return NULL;
}

int main(int argc, char **argv)
{
	catch_sigbus();
	if (argc == 6 && !strcmp(argv[1], "--bare"))
		return bare(argv + 2);
	if (argc < 9 || (argc - 5) % 4) {
		fprintf(stderr, "usage: worker FILE OTHER PAGES DEADLINE_NS (W OPS LOG DATA)...\n"
				"       worker --bare FILE PAGES OPS SECONDS\n");
		return 2;
	}
	struct file f;
	open_file(&f, argv[1], argv[2], atoi(argv[3]));
	int64_t deadline = strtoll(argv[4], NULL, 10);
	int nstreams = (argc - 5) / 4;
	struct stream **streams = calloc(nstreams, sizeof(*streams));
	pthread_t *threads = calloc(nstreams, sizeof(*threads));
	if (!streams || !threads)
		die("out of memory", "");
	for (int k = 0; k < nstreams; k++)
		streams[k] = open_stream(&f, argv + 5 + 4 * k, deadline);
	char c;  /* wait for the others: say ready, start on a byte from stdin */
	if (write(1, "r", 1) != 1 || read(0, &c, 1) != 1)
		return 2;
	for (int k = 1; k < nstreams; k++)
		if (pthread_create(&threads[k], NULL, run_stream, streams[k]))
			die("cannot start a thread", "");
	run_stream(streams[0]);
	for (int k = 1; k < nstreams; k++)
		pthread_join(threads[k], NULL);
	return 0;
}
