/* progress.c — rate-limited progress reports (see progress.h). */
#include "progress.h"

#include <inttypes.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define TTY_INTERVAL_S 0.25
#define LOG_INTERVAL_S 10.0

static bool on_tty;
static bool line_shown;
static double started, last_report;
static uint64_t last_requests;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void progress_begin(bool tty)
{
	on_tty = tty;
	line_shown = false;
	started = last_report = now_s();
	last_requests = 0;
}

void progress_update(const progress_state *s)
{
	double t = now_s();
	double interval = on_tty ? TTY_INTERVAL_S : LOG_INTERVAL_S;
	if (t - last_report < interval)
		return;
	double rate = (double)(s->requests - last_requests) / (t - last_report);
	last_report = t;
	last_requests = s->requests;
	if (on_tty) {
		fprintf(stderr, "\r\033[Kunits %" PRId64 "/%" PRId64 "  %.0f req/s  %" PRIu64 " rows written  %" PRIu64
				" seen  %.0fs",
			s->units_done, s->units_known, rate, s->rows_written, s->rows_seen, t - started);
		fflush(stderr);
		line_shown = true;
	} else {
		log_info("progress: units %" PRId64 "/%" PRId64 ", %.0f req/s, %" PRIu64 " rows written, %" PRIu64
			 " rows seen",
			 s->units_done, s->units_known, rate, s->rows_written, s->rows_seen);
	}
}

void progress_end(void)
{
	if (on_tty && line_shown) {
		fprintf(stderr, "\r\033[K");
		fflush(stderr);
	}
	line_shown = false;
}
