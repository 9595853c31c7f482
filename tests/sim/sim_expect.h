/* sim_expect.h — the expected mirror: what a perfect sync of the simulated
 * organisation must store, computed from the organisation's rows with the
 * mirror rules (docs/bloomsim.md), independently of the API writers.
 *
 * The result is one JSON object with the keys users, meetings,
 * meeting_attendees, todos, measurables, meeting_measurables and scores; each
 * holds row objects with the contract columns of mirror-schema.md, sorted by
 * key. The caller holds the organisation's read lock. */
#ifndef BLOOMSIM_SIM_EXPECT_H
#define BLOOMSIM_SIM_EXPECT_H

#include "sim_buf.h"
#include "sim_org.h"

/* Write the expected mirror into out (cleared first). Returns 0, or -1 on
 * allocation failure (out's content is then undefined). */
int sim_expect_write(const sim_org *org, sim_buf *out);

/* Write a timestamp as the mirror stores it: null for an absent, null or
 * empty date, else ISO 8601 UTC with a Z and at most 6 fraction digits
 * (truncated, trailing zeros dropped), e.g. "2024-06-01T10:00:00.123Z". */
void sim_expect_write_timestamp(sim_buf *out, sim_date d);

#endif
