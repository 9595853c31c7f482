/* test_hash.c — hash.c through hash.h: hash_bytes reads every byte (NULs
 * and the tail too) and is stable; the Bloom filter never forgets a hash it
 * was given and rarely claims one it was not; the recent-hashes cache keeps
 * the last four of a set and forgets the fifth oldest. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <string.h>

#include "hash.h"

static void test_hash_bytes_reads_every_byte(void **state)
{
	(void)state;
	unsigned char buf[37];
	memset(buf, 0, sizeof(buf));
	uint64_t zeros = hash_bytes(7, buf, sizeof(buf));
	assert_int_equal(zeros, hash_bytes(7, buf, sizeof(buf)));
	/* a change in any byte, the tail past the last full word included */
	for (size_t i = 0; i < sizeof(buf); i++) {
		buf[i] = 1;
		assert_int_not_equal(hash_bytes(7, buf, sizeof(buf)), zeros);
		buf[i] = 0;
	}
	/* trailing NULs count: "a" and "a\0" differ, as do 8 and 9 zero bytes */
	assert_int_not_equal(hash_bytes(0, "a", 1), hash_bytes(0, "a\0", 2));
	assert_int_not_equal(hash_bytes(0, buf, 8), hash_bytes(0, buf, 9));
	assert_int_not_equal(hash_bytes(0, buf, 0), hash_bytes(1, buf, 0)); /* the seed counts */
}

static void test_filter_never_forgets(void **state)
{
	(void)state;
	hash_filter *f = hash_filter_new(16); /* 8 KiB: it fills up on purpose */
	assert_non_null(f);
	size_t first_maybe = 0;
	for (uint64_t i = 1; i <= 20000; i++) {
		bool maybe = hash_filter_add(f, hash_bytes(0, &i, sizeof(i)));
		if (maybe && !first_maybe)
			first_maybe = (size_t)i;
	}
	/* every hash added is known, however full the filter */
	for (uint64_t i = 1; i <= 20000; i++)
		assert_true(hash_filter_add(f, hash_bytes(0, &i, sizeof(i))));
	/* a small filter this full answers "maybe" to new hashes at times... */
	assert_true(first_maybe > 0);
	hash_filter_free(f);
	hash_filter_free(NULL);
	assert_null(hash_filter_new(9));
	assert_null(hash_filter_new(33));
}

static void test_filter_false_positives_are_rare(void **state)
{
	(void)state;
	hash_filter *f = hash_filter_new(24); /* the loader's size */
	assert_non_null(f);
	size_t maybes = 0;
	for (uint64_t i = 0; i < 250000; i++)
		maybes += hash_filter_add(f, hash_bytes(1, &i, sizeof(i)));
	assert_true(maybes < 100);
	/* ...and a large one with a quarter of a million hashes almost never */
	maybes = 0;
	for (uint64_t i = 0; i < 250000; i++)
		maybes += hash_filter_add(f, hash_bytes(2, &i, sizeof(i)));
	assert_true(maybes < 100);
	hash_filter_free(f);
}

static void test_recent_keeps_four_per_set(void **state)
{
	(void)state;
	hash_recent *r = hash_recent_new(4); /* 16 slots, 4 sets of 4 */
	assert_non_null(r);
	/* hashes that share their top bits share a set */
	uint64_t same_set[6];
	for (int i = 0; i < 6; i++)
		same_set[i] = ((uint64_t)0x5 << 60) | (uint64_t)(i + 1);
	for (int i = 0; i < 4; i++)
		assert_false(hash_recent_add(r, same_set[i]));
	for (int i = 0; i < 4; i++)
		assert_true(hash_recent_add(r, same_set[i]));
	/* asking without adding neither adds nor pushes out */
	assert_false(hash_recent_has(r, same_set[5]));
	assert_false(hash_recent_has(r, same_set[5]));
	assert_true(hash_recent_has(r, same_set[0]));
	/* a fifth pushes out the oldest: the first */
	assert_false(hash_recent_add(r, same_set[4]));
	assert_true(hash_recent_add(r, same_set[1]));
	assert_false(hash_recent_has(r, same_set[0]));
	assert_false(hash_recent_add(r, same_set[0]));
	/* another set is untouched by all that */
	assert_false(hash_recent_add(r, (uint64_t)0x1 << 60));
	assert_true(hash_recent_add(r, (uint64_t)0x1 << 60));
	/* 0 is a hash like any other (stored apart from "empty") */
	assert_false(hash_recent_has(r, 0));
	assert_false(hash_recent_add(r, 0));
	assert_true(hash_recent_has(r, 0));
	assert_true(hash_recent_add(r, 0));
	/* cleared, it has forgotten them all */
	hash_recent_clear(r);
	assert_false(hash_recent_add(r, same_set[1]));
	assert_false(hash_recent_add(r, (uint64_t)0x1 << 60));
	assert_false(hash_recent_add(r, 0));
	hash_recent_free(r);
	hash_recent_free(NULL);
	assert_null(hash_recent_new(1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hash_bytes_reads_every_byte),
	    cmocka_unit_test(test_filter_never_forgets),
	    cmocka_unit_test(test_filter_false_positives_are_rare),
	    cmocka_unit_test(test_recent_keeps_four_per_set),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
