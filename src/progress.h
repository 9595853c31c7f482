/* progress.h — what a long run shows while it works: a progress line
 * rewritten in place on a TTY, or a log line every few seconds otherwise. */
#ifndef BLOOMSYNC_SRC_PROGRESS_H
#define BLOOMSYNC_SRC_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct progress_state {
	int64_t units_done, units_known;
	uint64_t requests;
	uint64_t rows_written; /* inserted + updated */
	uint64_t rows_seen;    /* rows handled (written or unchanged) */
} progress_state;

/* Starts reporting; tty chooses the in-place line (else periodic log lines). */
void progress_begin(bool tty);

/* Reports s if enough time has passed since the last report. */
void progress_update(const progress_state *s);

/* Clears the in-place line, if any. */
void progress_end(void);

#endif
