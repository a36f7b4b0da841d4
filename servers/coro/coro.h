/* coro.h - stackless, generator-style coroutines (switch-on-line, in the
 * manner of protothreads), the C shape of a Python generator.
 *
 * A coroutine is a function whose resume point is a small integer kept in
 * the caller's struct. CR_YIELD returns a wait request to the scheduler and
 * resumes after it on the next call; CR_AWAIT runs a sub-coroutine to its
 * end, handing its wait requests up unchanged: that is `yield from`.
 *
 * Rules (as for any stackless coroutine): locals do not survive a yield, so
 * keep state in the struct; no `switch` statement in a coroutine body (its
 * labels would collide); at most one yield or await per source line. Each
 * coroutine that may be suspended at once needs its own resume point. */
#ifndef WEFT_CORO_H
#define WEFT_CORO_H

#include <stdint.h>

typedef uint16_t cr_line; /* 0 = not started (or finished) */

/* What a task yields to the scheduler (bits). A coroutine's own result is
 * CR_DONE (0) when it finished, negative when it failed. */
enum cr_req {
	CR_DONE = 0,
	CR_READ = 1 << 0,   /* wake me when the fd is readable */
	CR_WRITE = 1 << 1,  /* ... writable */
	CR_ACCEPT = 1 << 2, /* ... a listener has a connection (readable) */
	CR_SLEEP = 1 << 3,  /* no I/O: only a poke wakes me */
	CR_AGAIN = 1 << 4,  /* I can go on: queue me behind the others */
};

/* Why a task was resumed (task->ev): the I/O bits above, or these. */
enum cr_ev {
	CR_POKE = 1 << 6,    /* someone has news for it (mail, stop) */
	CR_KILL = 1 << 7,    /* end now (coro: the runtime's deadline or hold retry said close) */
};

#define CR_BEGIN(lp) switch (*(lp)) { case 0:
#define CR_END(lp) } *(lp) = 0; return CR_DONE
/* Suspend with request req; the next call continues after this line. */
#define CR_YIELD(lp, req)                                                                          \
	do {                                                                                       \
		*(lp) = __LINE__;                                                                  \
		return (req);                                                                      \
	case __LINE__:;                                                                            \
	} while (0)
/* Leave the coroutine for good with result rc (so the next call starts over). */
#define CR_RETURN(lp, rc)                                                                          \
	do {                                                                                       \
		*(lp) = 0;                                                                         \
		return (rc);                                                                       \
	} while (0)
/* rc = yield from call: re-enter call on every resume while it yields (> 0);
 * continue with its result (CR_DONE or < 0) once it ends. */
#define CR_AWAIT(lp, rc, call)                                                                     \
	do {                                                                                       \
		*(lp) = __LINE__;                                                                  \
		__attribute__((fallthrough));                                                      \
	case __LINE__:                                                                             \
		(rc) = (call);                                                                     \
		if ((rc) > 0)                                                                      \
			return (rc);                                                               \
	} while (0)

#endif
