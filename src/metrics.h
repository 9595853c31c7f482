/* metrics.h — Prometheus text-format metrics of the last run, for
 * node_exporter's textfile collector. */
#ifndef BLOOMSYNC_SRC_METRICS_H
#define BLOOMSYNC_SRC_METRICS_H

#include <stddef.h>
#include <time.h>

#include "pipeline.h"

/* Writes the metrics of one `bloomsync sync` to path atomically: a
 * temporary file in the same directory, fsync, rename. s summarises the run
 * (which ran from started to finished, wall clock); NULL when no run could
 * start because of a usage or configuration error, which is then recorded
 * as status "config" with every count 0. exit_code is the process's exit
 * status (main.c's table). Returns 0, or -1 with a message in err. */
int metrics_write(const char *path, const pipeline_summary *s, int exit_code, time_t started, time_t finished,
		  char *err, size_t errlen) __attribute__((warn_unused_result));

#endif
