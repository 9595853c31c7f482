/* sim_api.h — the Bloom Growth v1 endpoints of bloomsim: routing and the JSON
 * bodies, exactly as the real API shapes them (PascalCase, whole arrays).
 *
 * Every entity has one writer, so the same row is byte-for-byte identical in
 * every list it appears in. The caller holds the organisation's read lock. */
#ifndef BLOOMSIM_SIM_API_H
#define BLOOMSIM_SIM_API_H

#include <stdbool.h>
#include <stdint.h>

#include "sim_buf.h"
#include "sim_org.h"

typedef enum {
	SIM_EP_OTHER = 0,
	SIM_EP_USERS_MINE,
	SIM_EP_USER,
	SIM_EP_SEARCH_ALL,
	SIM_EP_L10_LIST,
	SIM_EP_L10_USER_LIST,
	SIM_EP_L10_MEETING,
	SIM_EP_L10_ATTENDEES,
	SIM_EP_L10_TODOS,
	SIM_EP_L10_MEASURABLES,
	SIM_EP_SCORECARD_MEETING,
	SIM_EP_SCORECARD_USER,
	SIM_EP_TODO_USER,
	SIM_EP_TODO,
	SIM_EP_WEEKS_CURRENT,
	SIM_EP_ROCKS_USER,
	SIM_EP_ARCHIVED_ROCKS_USER,
	SIM_EP_L10_ISSUES,
	SIM_EP_ISSUES_USER,
	SIM_EP_L10_HEADLINES,
	SIM_EP_HEADLINE_USER,
	SIM_EP_COUNT
} sim_endpoint;

/* Query parameters that matter (names matched case-insensitively by the
 * caller). page_size <= 0 means paging is off: whole arrays. */
typedef struct sim_query {
	bool include_closed;
	long page;      /* 1-based */
	long page_size;
	const char *term; /* search/all term, decoded; NULL or "%" for all */
	bool include_resolved; /* INCLUDE_RESOLVED=true: L10/{id}/issues lists resolved ones too */
	bool include_origin;   /* include_origin=true: rocks carry Origins, meeting headlines Origin/OriginId */
} sim_query;

/* The stats name of an endpoint ("L10/{id}/todos"); never NULL. */
const char *sim_api_endpoint_name(sim_endpoint ep);

/* Route a request path (e.g. "/api/v1/L10/20000001/todos", any case,
 * without the query string). Returns the endpoint and stores the path id in
 * *id, or SIM_EP_OTHER when the path is not an API endpoint. */
sim_endpoint sim_api_route(const char *path, int64_t *id);

/* Write the body for a routed request into out (cleared first). Returns the
 * HTTP status: 200, 404 (unknown id or path) or 500 (out of memory). */
int sim_api_respond(const sim_org *org, sim_endpoint ep, int64_t id, const sim_query *q, sim_buf *out);

/* Write an API date value: "2024-06-01T10:00:00.123Z", "" or null (an absent
 * date is written as null; callers leave the key out instead). */
void sim_api_write_date(sim_buf *out, sim_date d);

#endif
