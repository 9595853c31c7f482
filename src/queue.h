/* queue.h — a bounded FIFO of pointers between two threads.
 *
 * The bound is what gives the pipeline backpressure: a full queue blocks
 * (or refuses, with queue_try_push) its producer. The queue never owns
 * what it holds; whoever pops an item owns it. */
#ifndef BLOOMSYNC_SRC_QUEUE_H
#define BLOOMSYNC_SRC_QUEUE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct queue queue;

/* Creates a queue holding at most capacity (>= 1) items; NULL on allocation failure. */
queue *queue_new(size_t capacity);

/* Frees the queue (not the items it may still hold); queue_free(NULL) is a no-op. */
void queue_free(queue *q);

/* Appends item, waiting while the queue is full. Returns 0, or -1 when the
 * queue was closed (the item was not added; the caller still owns it). */
int queue_push(queue *q, void *item);

/* Appends item only if there is room. Returns true when added. */
bool queue_try_push(queue *q, void *item);

/* Takes the oldest item, waiting up to timeout_ms (0: do not wait, < 0:
 * wait forever). Returns NULL on timeout, or when closed and empty. */
void *queue_pop(queue *q, int timeout_ms);

/* Wakes every waiter; later pushes fail; pops drain what is left. */
void queue_close(queue *q);

size_t queue_length(queue *q);

#endif
