/* metrics.h — Prometheus text-format metrics of the last run, for
 * node_exporter's textfile collector. */
#ifndef BLOOMSYNC_SRC_METRICS_H
#define BLOOMSYNC_SRC_METRICS_H

#include <stddef.h>
#include <time.h>

#include "pipeline.h"

/* Writes the metrics of the run summarised by s (which ran from started to
 * finished, wall clock) to path atomically: a temporary file in the same
 * directory, fsync, rename. Returns 0, or -1 with a message in err. */
int metrics_write(const char *path, const pipeline_summary *s, time_t started, time_t finished, char *err,
		  size_t errlen) __attribute__((warn_unused_result));

#endif
