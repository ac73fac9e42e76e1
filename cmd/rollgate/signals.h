/* SIGTERM/SIGINT and the run's timeout, handled on a thread of their own so the main
 * thread can be inside libpq when they arrive. */
#ifndef RG_SIGNALS_H
#define RG_SIGNALS_H

#include <stdbool.h>
#include <stdint.h>

#include "engine/ports.h"
#include "kube/kube.h"
#include "pg/pg.h"

/* Blocks the signals in every thread and starts the watcher: first thing in main, so the
 * run's timeout counts from process start and a signal during start-up is caught. */
void rg_signals_start(void);
/* The run's timeout, from process start (0: none): when it passes, the attached
 * connection and client are cancelled as for a signal. */
void rg_signals_set_timeout(int64_t timeout_ms);
/* The run's deadline on rg_now_ms()'s clock, 0 when it has none. */
int64_t rg_signals_deadline(void);
/* The connection to cancel when a signal or the timeout comes (NULL: none). */
void rg_signals_attach(struct rg_pg *pg);
/* The API client whose calls a signal should cut short (NULL: none). Only while waiting:
 * a leader still needs its client to release the Lease after a signal. */
void rg_signals_attach_kube(struct rg_kube *kube);
/* The signal received, or 0. */
int rg_signals_received(void);
bool rg_signals_timed_out(void);
/* Sleeps up to ms; false when a signal or the timeout ended it (or had come before). */
bool rg_signals_pause(int64_t ms);
/* The monotonic clock and rg_signals_pause, as the engine's clock port. */
void rg_signals_clock(struct rg_clock *clock);

#endif
