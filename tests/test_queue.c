/* test_queue.c — queue.c through queue.h: first in, first out; bounded;
 * a timed pop on an empty queue gives up; closing wakes the waiters. The
 * timed waits must not depend on the wall clock: clock_gettime is wrapped
 * so that CLOCK_REALTIME reads an hour ahead, as after the clock was set
 * back an hour while a wait was being computed; a wait measured on it
 * would last that hour (the alarm fails the test long before). */
// LDWRAP: clock_gettime
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <time.h>
#include <unistd.h>

#include "queue.h"

int __real_clock_gettime(clockid_t clk, struct timespec *ts);
int __wrap_clock_gettime(clockid_t clk, struct timespec *ts);
int __wrap_clock_gettime(clockid_t clk, struct timespec *ts)
{
	int rc = __real_clock_gettime(clk, ts);
	if (rc == 0 && clk == CLOCK_REALTIME)
		ts->tv_sec += 3600;
	return rc;
}

static void test_fifo_and_bounded(void **state)
{
	(void)state;
	int items[3];
	queue *q = queue_new(2);
	assert_non_null(q);
	assert_true(queue_try_push(q, &items[0]));
	assert_true(queue_try_push(q, &items[1]));
	assert_false(queue_try_push(q, &items[2])); /* full */
	assert_int_equal(queue_length(q), 2);
	assert_ptr_equal(queue_pop(q, 0), &items[0]);
	assert_ptr_equal(queue_pop(q, 0), &items[1]);
	assert_null(queue_pop(q, 0));
	queue_free(q);
}

/* A timed pop on an empty queue returns NULL; it once waited the hour the
 * wall clock was off by. */
static void test_timed_pop_ignores_the_wall_clock(void **state)
{
	(void)state;
	queue *q = queue_new(4);
	assert_non_null(q);
	alarm(60); /* SIGALRM ends the test, failed, instead of a hang */
	for (int i = 0; i < 3; i++)
		assert_null(queue_pop(q, 20));
	alarm(0);
	queue_free(q);
}

static void *push_later(void *arg)
{
	static int item;
	struct timespec ts = {0, 50 * 1000000L};
	nanosleep(&ts, NULL);
	queue_push(arg, &item);
	return &item;
}

/* A pop waiting without a deadline gets an item pushed later. */
static void test_pop_waits_for_a_push(void **state)
{
	(void)state;
	pthread_t t;
	void *pushed;
	queue *q = queue_new(1);
	assert_non_null(q);
	assert_int_equal(pthread_create(&t, NULL, push_later, q), 0);
	void *got = queue_pop(q, -1);
	pthread_join(t, &pushed);
	assert_ptr_equal(got, pushed);
	queue_free(q);
}

static void *close_later(void *arg)
{
	struct timespec ts = {0, 50 * 1000000L};
	nanosleep(&ts, NULL);
	queue_close(arg);
	return NULL;
}

/* Closing wakes a pop waiting without a deadline: it returns NULL. */
static void test_close_wakes_a_waiting_pop(void **state)
{
	(void)state;
	pthread_t t;
	queue *q = queue_new(1);
	assert_non_null(q);
	assert_int_equal(pthread_create(&t, NULL, close_later, q), 0);
	alarm(60);
	assert_null(queue_pop(q, -1));
	alarm(0);
	pthread_join(t, NULL);
	queue_free(q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fifo_and_bounded),
	    cmocka_unit_test(test_timed_pop_ignores_the_wall_clock),
	    cmocka_unit_test(test_pop_waits_for_a_push),
	    cmocka_unit_test(test_close_wakes_a_waiting_pop),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
