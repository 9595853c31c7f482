/* sim_timer.c — min-heap of due times served by one thread. */
#include "sim_timer.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

typedef struct entry {
	uint64_t due;
	void *arg;
} entry;

struct sim_timer {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t thread;
	sim_timer_fn fn;
	entry *heap;
	size_t n, cap;
	bool stopping;
	bool joined;
};

uint64_t sim_timer_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sift_up(entry *h, size_t i)
{
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		entry tmp;

		if (h[parent].due <= h[i].due)
			break;
		tmp = h[parent];
		h[parent] = h[i];
		h[i] = tmp;
		i = parent;
	}
}

static void sift_down(entry *h, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		entry tmp;

		if (l < n && h[l].due < h[m].due)
			m = l;
		if (r < n && h[r].due < h[m].due)
			m = r;
		if (m == i)
			return;
		tmp = h[m];
		h[m] = h[i];
		h[i] = tmp;
		i = m;
	}
}

static entry pop(sim_timer *t)
{
	entry top = t->heap[0];

	t->heap[0] = t->heap[--t->n];
	sift_down(t->heap, t->n, 0);
	return top;
}

static void *run(void *arg)
{
	sim_timer *t = arg;

	pthread_mutex_lock(&t->lock);
	while (!t->stopping) {
		uint64_t now = sim_timer_now_ms();

		if (t->n > 0 && t->heap[0].due <= now) {
			entry e = pop(t);

			pthread_mutex_unlock(&t->lock);
			t->fn(e.arg);
			pthread_mutex_lock(&t->lock);
		} else if (t->n > 0) {
			struct timespec ts;
			uint64_t due = t->heap[0].due;

			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_sec += (time_t)((due - now) / 1000u);
			ts.tv_nsec += (long)((due - now) % 1000u) * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&t->wake, &t->lock, &ts);
		} else {
			pthread_cond_wait(&t->wake, &t->lock);
		}
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

sim_timer *sim_timer_new(sim_timer_fn fn)
{
	sim_timer *t = calloc(1, sizeof *t);
	pthread_condattr_t attr;

	if (t == NULL)
		return NULL;
	t->fn = fn;
	pthread_mutex_init(&t->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&t->wake, &attr);
	pthread_condattr_destroy(&attr);
	if (pthread_create(&t->thread, NULL, run, t) != 0) {
		pthread_cond_destroy(&t->wake);
		pthread_mutex_destroy(&t->lock);
		free(t);
		return NULL;
	}
	return t;
}

int sim_timer_add(sim_timer *t, uint64_t due_ms, void *arg)
{
	int rc = -1;

	pthread_mutex_lock(&t->lock);
	if (t->stopping)
		goto done;
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 256;
		entry *heap = realloc(t->heap, cap * sizeof *heap);

		if (heap == NULL)
			goto done;
		t->heap = heap;
		t->cap = cap;
	}
	t->heap[t->n].due = due_ms;
	t->heap[t->n].arg = arg;
	sift_up(t->heap, t->n++);
	if (t->heap[0].arg == arg)
		pthread_cond_signal(&t->wake);
	rc = 0;
done:
	pthread_mutex_unlock(&t->lock);
	return rc;
}

void sim_timer_stop(sim_timer *t)
{
	pthread_mutex_lock(&t->lock);
	t->stopping = true;
	pthread_cond_signal(&t->wake);
	pthread_mutex_unlock(&t->lock);
	if (!t->joined) {
		pthread_join(t->thread, NULL);
		t->joined = true;
	}
	pthread_mutex_lock(&t->lock);
	while (t->n > 0) {
		entry e = pop(t);

		pthread_mutex_unlock(&t->lock);
		t->fn(e.arg);
		pthread_mutex_lock(&t->lock);
	}
	pthread_mutex_unlock(&t->lock);
}

void sim_timer_free(sim_timer *t)
{
	if (t == NULL)
		return;
	sim_timer_stop(t);
	pthread_cond_destroy(&t->wake);
	pthread_mutex_destroy(&t->lock);
	free(t->heap);
	free(t);
}
