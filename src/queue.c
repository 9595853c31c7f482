/* queue.c — bounded FIFO of pointers (ring buffer, mutex, two condvars). */
#include "queue.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

struct queue {
	pthread_mutex_t lock;
	pthread_cond_t not_empty;
	pthread_cond_t not_full;
	void **items;
	size_t capacity, head, count;
	bool closed;
};

queue *queue_new(size_t capacity)
{
	if (capacity == 0)
		capacity = 1;
	queue *q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	q->items = calloc(capacity, sizeof(void *));
	if (!q->items) {
		free(q);
		return NULL;
	}
	q->capacity = capacity;
	pthread_mutex_init(&q->lock, NULL);
	/* deadlines on the monotonic clock: a wall clock stepped back (NTP,
	 * an operator) would otherwise stretch a 5 ms wait by as much */
	pthread_condattr_t attr;
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&q->not_empty, &attr);
	pthread_cond_init(&q->not_full, &attr);
	pthread_condattr_destroy(&attr);
	return q;
}

void queue_free(queue *q)
{
	if (!q)
		return;
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->not_empty);
	pthread_cond_destroy(&q->not_full);
	free(q->items);
	free(q);
}

static void put_locked(queue *q, void *item)
{
	q->items[(q->head + q->count) % q->capacity] = item;
	q->count++;
	pthread_cond_signal(&q->not_empty);
}

int queue_push(queue *q, void *item)
{
	pthread_mutex_lock(&q->lock);
	while (q->count == q->capacity && !q->closed)
		pthread_cond_wait(&q->not_full, &q->lock);
	int rc = -1;
	if (!q->closed) {
		put_locked(q, item);
		rc = 0;
	}
	pthread_mutex_unlock(&q->lock);
	return rc;
}

bool queue_try_push(queue *q, void *item)
{
	pthread_mutex_lock(&q->lock);
	bool added = !q->closed && q->count < q->capacity;
	if (added)
		put_locked(q, item);
	pthread_mutex_unlock(&q->lock);
	return added;
}

static void deadline_after(struct timespec *ts, int timeout_ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += timeout_ms / 1000;
	ts->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

void *queue_pop(queue *q, int timeout_ms)
{
	struct timespec deadline;
	if (timeout_ms > 0)
		deadline_after(&deadline, timeout_ms);
	pthread_mutex_lock(&q->lock);
	while (q->count == 0 && !q->closed && timeout_ms != 0) {
		if (timeout_ms < 0) {
			pthread_cond_wait(&q->not_empty, &q->lock);
		} else if (pthread_cond_timedwait(&q->not_empty, &q->lock, &deadline) == ETIMEDOUT) {
			break;
		}
	}
	void *item = NULL;
	if (q->count > 0) {
		item = q->items[q->head];
		q->head = (q->head + 1) % q->capacity;
		q->count--;
		pthread_cond_signal(&q->not_full);
	}
	pthread_mutex_unlock(&q->lock);
	return item;
}

void queue_close(queue *q)
{
	pthread_mutex_lock(&q->lock);
	q->closed = true;
	pthread_cond_broadcast(&q->not_empty);
	pthread_cond_broadcast(&q->not_full);
	pthread_mutex_unlock(&q->lock);
}

size_t queue_length(queue *q)
{
	pthread_mutex_lock(&q->lock);
	size_t n = q->count;
	pthread_mutex_unlock(&q->lock);
	return n;
}
