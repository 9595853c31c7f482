/* sim_timer.h — one thread that fires callbacks at due times (a min-heap),
 * so thousands of delayed responses need no thread each. */
#ifndef BLOOMSIM_SIM_TIMER_H
#define BLOOMSIM_SIM_TIMER_H

#include <stdint.h>

typedef struct sim_timer sim_timer;

/* Called on the timer thread (or in sim_timer_stop) with the arg given to
 * sim_timer_add. */
typedef void (*sim_timer_fn)(void *arg);

/* Start the timer thread. Returns NULL on failure; free with sim_timer_free. */
sim_timer *sim_timer_new(sim_timer_fn fn);

/* Milliseconds on the monotonic clock. */
uint64_t sim_timer_now_ms(void);

/* Schedule fn(arg) at due_ms (monotonic). Returns 0, or -1 when the timer is
 * stopped or out of memory (fn will then not be called for arg). */
int sim_timer_add(sim_timer *t, uint64_t due_ms, void *arg);

/* Stop the thread and fire every pending entry now, in due order. Later adds
 * fail. Safe to call twice. */
void sim_timer_stop(sim_timer *t);

/* Stop (if needed) and free; NULL is a no-op. */
void sim_timer_free(sim_timer *t);

#endif
