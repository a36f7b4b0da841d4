/* ring.h - io_uring plumbing for the uring model (servers/uring.c): the
 * availability probe, ring creation with the best flags this kernel takes,
 * and the provided-buffer ring that Debian's liburing 2.3 has no helper for
 * (io_uring_setup_buf_ring arrived in liburing 2.4). */
#ifndef WEFT_URING_RING_H
#define WEFT_URING_RING_H

#include <liburing.h>
#include <stddef.h>

/* Set to 1 to make uring_probe() fail as if io_uring_setup(2) returned
 * ENOSYS, so the "io_uring unavailable" path (exit 69) can be tested on a
 * machine where io_uring works. */
#define URING_FORCE_UNAVAILABLE_ENV "WEFT_URING_FORCE_UNAVAILABLE"

/* Can this process use io_uring the way the model needs (multishot accept,
 * multishot recv with a buffer ring, cancel by fd, ...)? 0, or -errno after
 * logging one error line that says why and what to do. -ENOSYS, -EPERM and
 * -EACCES (blocked) and -EOPNOTSUPP (kernel too old) mean "unavailable". */
int uring_probe(void);

/* A ring with sq_entries SQEs and cq_entries CQEs (IORING_SETUP_CQSIZE),
 * single issuer + deferred task work when the kernel has them. 0 or -errno. */
int uring_ring_init(struct io_uring *ring, unsigned sq_entries, unsigned cq_entries);

/* A provided-buffer ring: count buffers (a power of 2) of size bytes each,
 * registered as group bgid and filled (page-aligned mmap memory). */
struct uring_bufs {
	struct io_uring_buf_ring *br;
	char *base;
	unsigned count, size, bgid;
};

int uring_bufs_init(struct uring_bufs *b, struct io_uring *ring, unsigned count, unsigned size, unsigned bgid);
/* Give buffer bid back to the kernel. */
void uring_bufs_recycle(struct uring_bufs *b, unsigned bid);
static inline char *uring_bufs_at(const struct uring_bufs *b, unsigned bid) { return b->base + (size_t)bid * b->size; }
/* ring NULL: the ring is already gone, just unmap. */
void uring_bufs_fini(struct uring_bufs *b, struct io_uring *ring);

#endif
