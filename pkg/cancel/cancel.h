/* The one cancellable wait: a token that any thread fires, once and for good, and a sleep
 * that the firing ends at once. Every backoff and poll interval sleeps on one (the run's,
 * a connection's, the lease renewal's). The firing is a byte in a pipe, so code that polls
 * sockets (pkg/pg) polls the token's descriptor beside them. */
#ifndef RG_CANCEL_H
#define RG_CANCEL_H

#include <stdbool.h>
#include <stdint.h>

struct rg_cancel;

/* A token not yet fired. A process that cannot get two file descriptors can open neither
 * a connection nor a file either, so, as for memory (mem/mem.h), that aborts. */
struct rg_cancel *rg_cancel_new(void);
void rg_cancel_free(struct rg_cancel *c);

/* Safe from any thread at any time, and cheap: an atomic store and a write that cannot
 * block, so a signal watcher may call it while holding a lock. */
void rg_cancel_fire(struct rg_cancel *c);
bool rg_cancel_fired(const struct rg_cancel *c);

/* Readable (POLLIN) from the firing on; never drained, so a poller that has already
 * acted on the firing leaves it out of its poll set. */
int rg_cancel_fd(const struct rg_cancel *c);

/* Sleeps ms, or less when the token fires: true when it slept the whole time, false when
 * the token fired (before or during the sleep). */
bool rg_cancel_sleep(const struct rg_cancel *c, int64_t ms);

#endif
