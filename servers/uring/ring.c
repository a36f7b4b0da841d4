/* ring.c - io_uring plumbing for the uring model: the availability probe,
 * ring setup, and the provided-buffer ring helper liburing 2.3 lacks. */
#include "ring.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/utsname.h>

#include "log.h"

static const char *blocked_hint(int err)
{
	switch (err) {
	case -ENOSYS:
		return "the kernel has no io_uring, or a seccomp filter blocks it (Docker's default profile does: "
		       "run the container with --security-opt seccomp=unconfined or a profile that allows "
		       "io_uring_setup, io_uring_enter and io_uring_register)";
	case -EPERM:
	case -EACCES:
		return "io_uring is disabled for this process: check sysctl kernel.io_uring_disabled (0 enables it; "
		       "1 allows only members of kernel.io_uring_group), or a seccomp/LSM policy that denies it";
	default:
		return "io_uring_setup failed";
	}
}

static void log_unavailable(int err, const char *why)
{
	log_error("uring: io_uring is unavailable (%s): %s; use another model, e.g. --model coro --poller epoll",
	          strerror(-err), why);
}

/* Multishot recv (6.0) cannot be probed without a socket; the version can. */
static bool kernel_at_least(int major, int minor)
{
	struct utsname u;
	int ma = 0, mi = 0;
	if (uname(&u) < 0 || sscanf(u.release, "%d.%d", &ma, &mi) != 2)
		return true; /* unknown: let the ops themselves fail later */
	return ma > major || (ma == major && mi >= minor);
}

static int probe_ops(struct io_uring *r)
{
	static const struct {
		int op;
		const char *name;
	} need[] = {
		{IORING_OP_ACCEPT, "accept"},       {IORING_OP_RECV, "recv"},
		{IORING_OP_SEND, "send"},           {IORING_OP_SENDMSG, "sendmsg"},
		{IORING_OP_POLL_ADD, "poll_add"},   {IORING_OP_TIMEOUT, "timeout"},
		{IORING_OP_ASYNC_CANCEL, "cancel"},
	};
	struct io_uring_probe *p = io_uring_get_probe_ring(r);
	if (!p) {
		log_unavailable(-EOPNOTSUPP, "the kernel cannot list its io_uring opcodes (needs Linux >= 6.0)");
		return -EOPNOTSUPP;
	}
	int rc = 0;
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]) && rc == 0; i++) {
		if (!io_uring_opcode_supported(p, need[i].op)) {
			char why[128];
			snprintf(why, sizeof(why), "the kernel lacks the %s opcode (needs Linux >= 6.0)", need[i].name);
			log_unavailable(-EOPNOTSUPP, why);
			rc = -EOPNOTSUPP;
		}
	}
	io_uring_free_probe(p);
	return rc;
}

int uring_probe(void)
{
	const char *force = getenv(URING_FORCE_UNAVAILABLE_ENV);
	if (force && strcmp(force, "1") == 0) {
		log_unavailable(-ENOSYS, "forced by " URING_FORCE_UNAVAILABLE_ENV "=1 (testing the fallback path)");
		return -ENOSYS;
	}
	struct io_uring r;
	struct io_uring_params p = {0};
	int rc = io_uring_queue_init_params(4, &r, &p);
	if (rc < 0) {
		if (rc == -ENOSYS || rc == -EPERM || rc == -EACCES)
			log_unavailable(rc, blocked_hint(rc));
		else
			log_error("uring: io_uring_setup: %s", strerror(-rc));
		return rc;
	}
	const unsigned feats = IORING_FEAT_NODROP | IORING_FEAT_SUBMIT_STABLE | IORING_FEAT_FAST_POLL | IORING_FEAT_EXT_ARG;
	if ((p.features & feats) != feats || !kernel_at_least(6, 0)) {
		log_unavailable(-EOPNOTSUPP, "the kernel is too old: multishot recv with provided buffer rings needs Linux >= 6.0");
		rc = -EOPNOTSUPP;
	}
	if (rc == 0)
		rc = probe_ops(&r);
	if (rc == 0) {
		struct uring_bufs b;
		rc = uring_bufs_init(&b, &r, 1, 64, 0);
		if (rc == 0)
			uring_bufs_fini(&b, &r);
		else if (rc == -EPERM || rc == -EACCES)
			log_unavailable(rc, "io_uring_register is denied (a seccomp filter or LSM)");
		else
			log_unavailable(rc = -EOPNOTSUPP, "the kernel cannot register provided buffer rings (needs Linux >= 5.19)");
	}
	io_uring_queue_exit(&r);
	return rc;
}

int uring_ring_init(struct io_uring *ring, unsigned sq_entries, unsigned cq_entries)
{
	/* DEFER_TASKRUN (6.1): completions are run only when we ask for events,
	 * i.e. once per loop turn, which is exactly our batching. Older kernels
	 * reject it with EINVAL; then COOP_TASKRUN (5.19), then neither. */
	static const unsigned tries[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL,
		IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SUBMIT_ALL,
		0,
	};
	int rc = -EINVAL;
	for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]) && rc == -EINVAL; i++) {
		struct io_uring_params p = {0};
		p.flags = tries[i] | IORING_SETUP_CQSIZE;
		p.cq_entries = cq_entries;
		rc = io_uring_queue_init_params(sq_entries, ring, &p);
	}
	return rc;
}

int uring_bufs_init(struct uring_bufs *b, struct io_uring *ring, unsigned count, unsigned size, unsigned bgid)
{
	memset(b, 0, sizeof(*b));
	size_t ring_bytes = (size_t)count * sizeof(struct io_uring_buf);
	/* The ring must be page aligned (io_uring_register_buf_ring(3)). */
	void *r = mmap(NULL, ring_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (r == MAP_FAILED)
		return -errno;
	/* Populated now: every buffer is used in turn, so this is a fixed cost per
	 * ring, paid and visible at start-up rather than looking like growth. */
	void *base = mmap(NULL, (size_t)count * size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
	                  -1, 0);
	if (base == MAP_FAILED) {
		int err = -errno;
		munmap(r, ring_bytes);
		return err;
	}
	struct io_uring_buf_reg reg = {0};
	reg.ring_addr = (uintptr_t)r;
	reg.ring_entries = count;
	reg.bgid = (__u16)bgid;
	int rc = io_uring_register_buf_ring(ring, &reg, 0);
	if (rc < 0) {
		munmap(base, (size_t)count * size);
		munmap(r, ring_bytes);
		return rc;
	}
	*b = (struct uring_bufs){.br = r, .base = base, .count = count, .size = size, .bgid = bgid};
	io_uring_buf_ring_init(b->br);
	int mask = io_uring_buf_ring_mask(count);
	for (unsigned i = 0; i < count; i++)
		io_uring_buf_ring_add(b->br, uring_bufs_at(b, i), size, (unsigned short)i, mask, (int)i);
	io_uring_buf_ring_advance(b->br, (int)count);
	return 0;
}

void uring_bufs_recycle(struct uring_bufs *b, unsigned bid)
{
	io_uring_buf_ring_add(b->br, uring_bufs_at(b, bid), b->size, (unsigned short)bid,
	                      io_uring_buf_ring_mask(b->count), 0);
	io_uring_buf_ring_advance(b->br, 1);
}

void uring_bufs_fini(struct uring_bufs *b, struct io_uring *ring)
{
	if (!b->br)
		return;
	if (ring)
		io_uring_unregister_buf_ring(ring, (int)b->bgid);
	munmap(b->br, (size_t)b->count * sizeof(struct io_uring_buf));
	munmap(b->base, (size_t)b->count * b->size);
	b->br = NULL;
}
