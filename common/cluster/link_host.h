/* link_host.h - the engine link's host loop (link_loop.h) on the loop
 * runtime, the way hiredis's adapters put it on a host's event loop: each
 * slot a loop_watch with read and/or write interest, the timer a loop_alarm
 * on the loop's timer heap, and cl_wake() the loop's mailbox wake-up (no
 * eventfd of its own; none at all from the loop's own thread). It is a
 * loop_guest (loop.h): hosted on loop 0 of the model's group (coro, uring)
 * or of the host group (threads, pool). Until attached, and after detached,
 * it only records what the link asks. */
#ifndef WEFT_CLUSTER_LINK_HOST_H
#define WEFT_CLUSTER_LINK_HOST_H

#include "link_loop.h"

struct cl_host;
struct loop_guest;

struct cl_host *cl_host_new(void);
void cl_host_set_handler(struct cl_host *h, const struct cl_handler *handler);
struct cl_loop *cl_host_loop(struct cl_host *h);
/* What to give loop_guest_set(). */
const struct loop_guest *cl_host_guest(struct cl_host *h);
/* After the loop is gone (or was never attached). */
void cl_host_free(struct cl_host *h);

#endif
