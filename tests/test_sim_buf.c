/* test_sim_buf.c — bloomsim's buffer: sim_buf_addf writes what snprintf
 * writes for every conversion bloomsim uses (and the edges of each: the most
 * negative integers, zero padding after a sign, precision on strings), and
 * the number writers match their printf formats. bloomsim's own sources are
 * compiled in here: they are not part of the library the other tests link. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "sim/sim_buf.c"

/* Appends through sim_buf_addf after some text already in the buffer, and
 * compares with snprintf of the same format and arguments. */
#define ASSERT_LIKE_PRINTF(...)                                                                                        \
	do {                                                                                                           \
		char want[256];                                                                                        \
		sim_buf b;                                                                                             \
		sim_buf_init(&b);                                                                                      \
		sim_buf_adds(&b, "<");                                                                                 \
		sim_buf_addf(&b, __VA_ARGS__);                                                                         \
		snprintf(want + 1, sizeof(want) - 1, __VA_ARGS__);                                                     \
		want[0] = '<';                                                                                         \
		assert_true(sim_buf_ok(&b));                                                                           \
		assert_string_equal(b.data, want);                                                                     \
		assert_int_equal(b.len, strlen(want));                                                                 \
		sim_buf_free(&b);                                                                                      \
	} while (0)

static void test_addf_integers(void **state)
{
	(void)state;
	ASSERT_LIKE_PRINTF("%d", 0);
	ASSERT_LIKE_PRINTF("%d|%d|%i", INT_MIN, INT_MAX, -1);
	ASSERT_LIKE_PRINTF("%ld %ld", LONG_MIN, LONG_MAX);
	ASSERT_LIKE_PRINTF("%lld %lld", LLONG_MIN, LLONG_MAX);
	ASSERT_LIKE_PRINTF("%u %lu %llu %zu", UINT_MAX, ULONG_MAX, ULLONG_MAX, SIZE_MAX);
	/* zero padding, after the sign, and widths the number already exceeds */
	ASSERT_LIKE_PRINTF("%04d-%02d-%02dT%02d", 2026, 1, 9, 0);
	ASSERT_LIKE_PRINTF("%04d %02d %02d", -7, -5, 123);
	ASSERT_LIKE_PRINTF(".%0*u", 6, 42u);
	ASSERT_LIKE_PRINTF(".%0*u", 0, 42u);
	ASSERT_LIKE_PRINTF("[%*d]", -6, 42); /* a negative * width pads on the right */
	ASSERT_LIKE_PRINTF("[%5d][%-5d][%5d]", 42, 42, -42);
}

static void test_addf_strings_and_others(void **state)
{
	(void)state;
	ASSERT_LIKE_PRINTF("no conversion at all");
	ASSERT_LIKE_PRINTF("%s", "");
	ASSERT_LIKE_PRINTF("{\"%s\":%lld,\"Key\":\"NameId_%lld\"}", "Id", 12345LL, -1LL);
	ASSERT_LIKE_PRINTF("[%6s][%-6s][%.2s][%.0s]", "ab", "ab", "abcdef", "x");
	ASSERT_LIKE_PRINTF("100%% %c%c", 'o', 'k');
	ASSERT_LIKE_PRINTF("%g %g %g %.3f %e", 0.5, 1e300, -0.0, 2.0 / 3, 12345.678);
	ASSERT_LIKE_PRINTF("%s%s%d%s", "a", "b", 3, "end");
}

static void test_addf_long_output_grows_the_buffer(void **state)
{
	(void)state;
	char big[1000];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	ASSERT_LIKE_PRINTF("%s", big + 800);
	sim_buf b;
	sim_buf_init(&b);
	for (int i = 0; i < 50; i++)
		sim_buf_addf(&b, "%s|%0*d", big, 20, i);
	assert_true(sim_buf_ok(&b));
	assert_int_equal(b.len, 50 * (999 + 1 + 20));
	assert_int_equal(strlen(b.data), b.len);
	assert_memory_equal(b.data + b.len - 3, "049", 3);
	sim_buf_free(&b);
}

static void assert_num_like_printf(double v)
{
	char want[64];
	sim_buf b;
	sim_buf_init(&b);
	sim_buf_add_num(&b, v);
	snprintf(want, sizeof(want), "%.15g", v);
	assert_string_equal(b.data, want);
	sim_buf_free(&b);
}

static void test_numbers(void **state)
{
	(void)state;
	const double nums[] = { 0.0, -0.0, 1.0, -3.0, 42.0, 12.5, 0.1, 1e15 - 1, 1e15, -1e15, 1e20, -2.5e-7, 3.0 / 7 };
	for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++)
		assert_num_like_printf(nums[i]);
	sim_buf b;
	sim_buf_init(&b);
	sim_buf_add_int(&b, INT64_MIN);
	sim_buf_add(&b, " ", 1);
	sim_buf_add_int(&b, 0);
	assert_string_equal(b.data, "-9223372036854775808 0");
	sim_buf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addf_integers),
		cmocka_unit_test(test_addf_strings_and_others),
		cmocka_unit_test(test_addf_long_output_grows_the_buffer),
		cmocka_unit_test(test_numbers),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
