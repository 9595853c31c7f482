/* sim_api.c — routing and JSON bodies of the simulated endpoints. */
#include "sim_api.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_rng.h"

static const char *const endpoint_names[SIM_EP_COUNT] = {
	[SIM_EP_OTHER] = "other",
	[SIM_EP_USERS_MINE] = "users/mine",
	[SIM_EP_USER] = "users/{id}",
	[SIM_EP_SEARCH_ALL] = "search/all",
	[SIM_EP_L10_LIST] = "L10/list",
	[SIM_EP_L10_USER_LIST] = "L10/{id}/list",
	[SIM_EP_L10_MEETING] = "L10/{id}",
	[SIM_EP_L10_ATTENDEES] = "L10/{id}/attendees",
	[SIM_EP_L10_TODOS] = "L10/{id}/todos",
	[SIM_EP_L10_MEASURABLES] = "L10/{id}/measurables",
	[SIM_EP_SCORECARD_MEETING] = "scorecard/meeting/{id}",
	[SIM_EP_SCORECARD_USER] = "scorecard/user/{id}",
	[SIM_EP_TODO_USER] = "todo/user/{id}",
	[SIM_EP_TODO] = "todo/{id}",
	[SIM_EP_WEEKS_CURRENT] = "weeks/current",
	[SIM_EP_ROCKS_USER] = "rocks/user/{id}",
	[SIM_EP_ARCHIVED_ROCKS_USER] = "archivedrocks/user/{id}",
	[SIM_EP_L10_ISSUES] = "L10/{id}/issues",
	[SIM_EP_ISSUES_USER] = "issues/users/{id}",
	[SIM_EP_L10_HEADLINES] = "L10/{id}/headlines",
	[SIM_EP_HEADLINE_USER] = "headline/users/{id}",
};

const char *sim_api_endpoint_name(sim_endpoint ep)
{
	if (ep < 0 || ep >= SIM_EP_COUNT)
		return "other";
	return endpoint_names[ep];
}

/* ---- routing ---- */

static bool parse_id(const char *s, int64_t *id)
{
	char *end;
	long long v;

	if (*s == '\0' || (!isdigit((unsigned char)*s) && *s != '-'))
		return false;
	v = strtoll(s, &end, 10);
	if (*end != '\0')
		return false;
	*id = v;
	return true;
}

static int split(char *path, char **seg, int max)
{
	int n = 0;
	char *save = NULL;
	char *tok;

	for (tok = strtok_r(path, "/", &save); tok != NULL; tok = strtok_r(NULL, "/", &save)) {
		if (n == max)
			return -1;
		seg[n++] = tok;
	}
	return n;
}

static sim_endpoint route_l10(char **seg, int n, int64_t *id)
{
	if (n == 2 && strcmp(seg[1], "list") == 0)
		return SIM_EP_L10_LIST;
	if (n < 2 || !parse_id(seg[1], id))
		return SIM_EP_OTHER;
	if (n == 2)
		return SIM_EP_L10_MEETING;
	if (n != 3)
		return SIM_EP_OTHER;
	if (strcmp(seg[2], "list") == 0)
		return SIM_EP_L10_USER_LIST;
	if (strcmp(seg[2], "attendees") == 0)
		return SIM_EP_L10_ATTENDEES;
	if (strcmp(seg[2], "todos") == 0)
		return SIM_EP_L10_TODOS;
	if (strcmp(seg[2], "measurables") == 0)
		return SIM_EP_L10_MEASURABLES;
	if (strcmp(seg[2], "issues") == 0)
		return SIM_EP_L10_ISSUES;
	if (strcmp(seg[2], "headlines") == 0)
		return SIM_EP_L10_HEADLINES;
	return SIM_EP_OTHER;
}

static sim_endpoint route_segments(char **seg, int n, int64_t *id)
{
	if (n == 2 && strcmp(seg[0], "users") == 0)
		return strcmp(seg[1], "mine") == 0 ? SIM_EP_USERS_MINE : parse_id(seg[1], id) ? SIM_EP_USER : SIM_EP_OTHER;
	if (n == 2 && strcmp(seg[0], "search") == 0 && strcmp(seg[1], "all") == 0)
		return SIM_EP_SEARCH_ALL;
	if (n >= 2 && strcmp(seg[0], "l10") == 0)
		return route_l10(seg, n, id);
	if (n == 3 && strcmp(seg[0], "scorecard") == 0 && parse_id(seg[2], id)) {
		if (strcmp(seg[1], "meeting") == 0)
			return SIM_EP_SCORECARD_MEETING;
		if (strcmp(seg[1], "user") == 0)
			return SIM_EP_SCORECARD_USER;
	}
	if (n == 3 && strcmp(seg[0], "todo") == 0 && strcmp(seg[1], "user") == 0 && parse_id(seg[2], id))
		return SIM_EP_TODO_USER;
	if (n == 2 && strcmp(seg[0], "todo") == 0 && parse_id(seg[1], id))
		return SIM_EP_TODO;
	if (n == 2 && strcmp(seg[0], "weeks") == 0 && strcmp(seg[1], "current") == 0)
		return SIM_EP_WEEKS_CURRENT;
	if (n == 3 && parse_id(seg[2], id)) {
		if (strcmp(seg[0], "rocks") == 0 && strcmp(seg[1], "user") == 0)
			return SIM_EP_ROCKS_USER;
		if (strcmp(seg[0], "archivedrocks") == 0 && strcmp(seg[1], "user") == 0)
			return SIM_EP_ARCHIVED_ROCKS_USER;
		if (strcmp(seg[0], "issues") == 0 && strcmp(seg[1], "users") == 0)
			return SIM_EP_ISSUES_USER;
		if (strcmp(seg[0], "headline") == 0 && strcmp(seg[1], "users") == 0)
			return SIM_EP_HEADLINE_USER;
	}
	return SIM_EP_OTHER;
}

sim_endpoint sim_api_route(const char *path, int64_t *id)
{
	static const char prefix[] = "/api/v1/";
	char lower[256];
	char *seg[6];
	size_t i, len = strlen(path);
	int n;

	*id = 0;
	if (len >= sizeof lower || len < sizeof prefix - 1)
		return SIM_EP_OTHER;
	for (i = 0; i <= len; i++)
		lower[i] = (char)tolower((unsigned char)path[i]);
	if (strncmp(lower, prefix, sizeof prefix - 1) != 0)
		return SIM_EP_OTHER;
	n = split(lower + sizeof prefix - 1, seg, 6);
	if (n <= 0)
		return SIM_EP_OTHER;
	return route_segments(seg, n, id);
}

/* ---- values ---- */

void sim_api_write_date(sim_buf *out, sim_date d)
{
	int y, mo, da, h, mi, s;

	switch (d.kind) {
	case SIM_DATE_ABSENT:
	case SIM_DATE_NULL:
		sim_buf_adds(out, "null");
		return;
	case SIM_DATE_EMPTY:
		sim_buf_adds(out, "\"\"");
		return;
	default:
		break;
	}
	sim_org_civil(d.secs, &y, &mo, &da, &h, &mi, &s);
	if (d.kind == SIM_DATE_DAY) {
		sim_buf_addf(out, "\"%04d-%02d-%02d\"", y, mo, da);
		return;
	}
	sim_buf_addf(out, "\"%04d-%02d-%02dT%02d:%02d:%02d", y, mo, da, h, mi, s);
	if (d.frac_digits > 0)
		sim_buf_addf(out, ".%0*u", d.frac_digits, d.frac);
	sim_buf_adds(out, d.kind == SIM_DATE_Z ? "Z\"" : "\"");
}

static void key_date(sim_buf *out, const char *key, sim_date d)
{
	if (d.kind == SIM_DATE_ABSENT)
		return;
	sim_buf_addf(out, ",\"%s\":", key);
	sim_api_write_date(out, d);
}

static void text(sim_buf *out, const sim_buf *tmp)
{
	sim_buf_add_jstr(out, tmp->data ? tmp->data : "", tmp->len);
}

static void opt_text(sim_buf *out, sim_val v, const sim_buf *tmp)
{
	if (v == SIM_VALUE)
		text(out, tmp);
	else
		sim_buf_adds(out, "null");
}

static void opt_num(sim_buf *out, sim_val v, double num)
{
	if (v == SIM_VALUE)
		sim_buf_add_num(out, num);
	else
		sim_buf_adds(out, "null");
}

/* ---- paging ---- */

typedef struct pager {
	long skip;
	long take; /* -1: no limit */
	long seen;
} pager;

static void pager_init(pager *p, const sim_query *q)
{
	long page = q->page > 0 ? q->page : 1;

	p->seen = 0;
	p->skip = 0;
	p->take = -1;
	if (q->page_size > 0) {
		p->skip = (page - 1) * q->page_size;
		p->take = q->page_size;
	}
}

/* Whether the next element of the array belongs to the page; writes the
 * separating comma when it does. */
static bool pager_want(pager *p, sim_buf *out)
{
	long i = p->seen++;

	if (i < p->skip || (p->take >= 0 && i >= p->skip + p->take))
		return false;
	if (i > p->skip)
		sim_buf_add(out, ",", 1);
	return true;
}

/* ---- entity writers ---- */

static void write_user_short(sim_buf *out, const sim_org *org, long u, bool image, sim_buf *tmp)
{
	sim_buf_addf(out, "{\"Id\":%lld,\"Name\":", (long long)sim_org_user_id(u));
	sim_org_user_name(org, u, tmp);
	text(out, tmp);
	if (image) {
		sim_buf_adds(out, ",\"ImageUrl\":");
		sim_org_user_image(org, u, tmp);
		text(out, tmp);
	}
	sim_buf_adds(out, "}");
}

static void write_search_user(sim_buf *out, const sim_org *org, long u, sim_buf *tmp)
{
	sim_val v;

	sim_buf_addf(out, "{\"Id\":%lld,\"Name\":", (long long)sim_org_user_id(u));
	sim_org_user_name(org, u, tmp);
	text(out, tmp);
	sim_buf_adds(out, ",\"Description\":");
	v = sim_org_user_title(org, u, tmp);
	opt_text(out, v, tmp);
	sim_buf_adds(out, ",\"Email\":");
	v = sim_org_user_email(org, u, tmp);
	opt_text(out, v, tmp);
	sim_buf_addf(out, ",\"OrganizationId\":%d,\"ImageUrl\":", SIM_ORG_ID);
	sim_org_user_image(org, u, tmp);
	text(out, tmp);
	sim_buf_adds(out, ",\"ResultType\":\"User\"}");
}

static void write_search_other(sim_buf *out, int64_t id, const char *name, const char *kind)
{
	sim_buf_addf(out, "{\"Id\":%lld,\"Name\":", (long long)id);
	sim_buf_add_jstrs(out, name);
	sim_buf_addf(out, ",\"Description\":null,\"Email\":null,\"OrganizationId\":%d,"
			  "\"ImageUrl\":null,\"ResultType\":\"%s\"}", SIM_ORG_ID, kind);
}

static void write_list_row(sim_buf *out, const sim_org *org, long m, sim_buf *tmp)
{
	long long id = (long long)sim_org_meeting_id(m);

	sim_buf_addf(out, "{\"Id\":%lld,\"Type\":\"NameId\",\"Key\":\"NameId_%lld\",\"Name\":", id, id);
	sim_org_meeting_name(org, m, tmp);
	text(out, tmp);
	sim_buf_adds(out, "}");
}

static void write_meeting(sim_buf *out, const sim_org *org, long m, sim_buf *tmp)
{
	long long id = (long long)sim_org_meeting_id(m);
	int64_t org_id;
	sim_val v;

	sim_buf_addf(out, "{\"Id\":%lld,\"Type\":\"L10Meeting\",\"Key\":\"L10Meeting_%lld\",\"Basics\":{\"Name\":", id, id);
	sim_org_meeting_name(org, m, tmp);
	text(out, tmp);
	sim_buf_adds(out, ",\"TeamType\":\"LeadershipTeam\",\"Settings\":{\"Timezone\":\"UTC\","
			  "\"Pages\":[\"Segue\",\"Scorecard\",\"Todos\"]}}");
	key_date(out, "CreateTime", sim_org_meeting_created(org, m));
	key_date(out, "StartDateUtc", sim_org_meeting_start(org, m));
	v = sim_org_meeting_org_id(org, m, &org_id);
	if (v == SIM_VALUE)
		sim_buf_addf(out, ",\"OrganizationId\":%lld", (long long)org_id);
	else if (v == SIM_NULL)
		sim_buf_adds(out, ",\"OrganizationId\":null");
	sim_buf_addf(out, ",\"AttendeeCount\":%ld}",
		     (long)(org->meeting_attendees.start[m + 1] - org->meeting_attendees.start[m]));
}

static void write_todo(sim_buf *out, const sim_org *org, long t, sim_buf *tmp)
{
	const sim_todo *todo = &org->todos[t];
	long long id = (long long)sim_org_todo_id(org, t);
	uint64_t h = sim_rng_hash(org->params.seed, (uint64_t)t, 8);
	sim_todo_dates d;
	sim_val v;

	sim_buf_addf(out, "{\"Id\":%lld,\"Type\":\"TodoModel\",\"Key\":\"TodoModel_%lld\",\"Name\":", id, id);
	sim_org_todo_name(org, t, tmp);
	text(out, tmp);
	sim_buf_adds(out, ",\"DetailsUrl\":");
	v = sim_org_todo_details(org, t, tmp);
	opt_text(out, v, tmp);
	sim_org_todo_dates(org, t, &d);
	sim_buf_adds(out, ",\"DueDate\":");
	sim_api_write_date(out, d.due);
	sim_buf_adds(out, ",\"CreateTime\":");
	sim_api_write_date(out, d.create);
	sim_buf_adds(out, ",\"CompleteTime\":");
	sim_api_write_date(out, d.complete);
	key_date(out, "CloseTime", d.close);
	sim_buf_addf(out, ",\"Complete\":%s,\"Origin\":", todo->closed ? "true" : "false");
	if (todo->meeting < 0) {
		sim_buf_adds(out, "\"Individual\",\"OriginId\":null");
	} else {
		sim_org_meeting_name(org, todo->meeting, tmp);
		text(out, tmp);
		sim_buf_addf(out, ",\"OriginId\":%lld", (long long)sim_org_meeting_id(todo->meeting));
	}
	sim_buf_adds(out, ",\"Owner\":");
	write_user_short(out, org, todo->owner, false, tmp);
	sim_buf_addf(out, ",\"TodoType\":\"%s\",\"Ordering\":%ld,\"Details\":{\"Priority\":%d,\"Tags\":[\"sim\"]}}",
		     todo->milestone ? "Milestone" : todo->meeting < 0 ? "Personal" : "L10",
		     t % 100, (int)(h % 3));
}

static void write_meas(sim_buf *out, const sim_org *org, long k, sim_buf *tmp)
{
	long long id = (long long)sim_org_meas_id(k);
	double target;
	sim_val v;

	sim_buf_addf(out, "{\"Id\":%lld,\"Type\":\"Measurable\",\"Key\":\"Measurable_%lld\",\"Name\":", id, id);
	sim_org_meas_name(org, k, tmp);
	text(out, tmp);
	sim_buf_adds(out, ",\"Target\":");
	v = sim_org_meas_target(org, k, &target);
	opt_num(out, v, target);
	/* Between takes its upper bound from AltTarget: target + 20 */
	sim_buf_adds(out, ",\"AltTarget\":");
	opt_num(out, strcmp(sim_org_meas_direction(org, k), "Between") == 0 ? v : SIM_NULL, target + 20);
	sim_buf_addf(out, ",\"Direction\":\"%s\",\"Modifiers\":\"%s\",\"Owner\":",
		     sim_org_meas_direction(org, k), sim_org_meas_unit(org, k));
	write_user_short(out, org, org->meas[k].owner, false, tmp);
	sim_buf_adds(out, ",\"Admin\":");
	write_user_short(out, org, org->meas[k].owner, false, tmp);
	sim_buf_addf(out, ",\"IsDivider\":false,\"Disabled\":false,\"Ordering\":%ld}", k % 50);
}

/* Meeting m's divider: even meetings use a null Id, odd ones an empty Name. */
static void write_divider(sim_buf *out, long m)
{
	if (m % 2 == 0)
		sim_buf_adds(out, "{\"Id\":null,\"Type\":\"Measurable\",\"Key\":null,\"Name\":\"—— Sales ——\"");
	else
		sim_buf_addf(out, "{\"Id\":%lld,\"Type\":\"Measurable\",\"Key\":\"Measurable_%lld\",\"Name\":\"\"",
			     SIM_DIVIDER_BASE + m, SIM_DIVIDER_BASE + m);
	sim_buf_adds(out, ",\"Target\":null,\"AltTarget\":null,\"Direction\":null,\"Modifiers\":null,"
			  "\"Owner\":null,\"Admin\":null,\"IsDivider\":true,\"Disabled\":false,\"Ordering\":99}");
}

static void write_score(sim_buf *out, const sim_org *org, long s, sim_buf *tmp)
{
	const sim_score *score = &org->scores[s];
	long long id = (long long)sim_org_score_id(s);
	double num;
	sim_val v;

	sim_buf_addf(out, "{\"Id\":%lld,\"Type\":\"Score\",\"Key\":\"Score_%lld\",\"MeasurableId\":%lld,"
			  "\"AccountableUserId\":%lld,\"MeasurableName\":",
		     id, id, (long long)sim_org_meas_id(score->meas), (long long)sim_org_user_id(score->user));
	sim_org_meas_name(org, score->meas, tmp);
	text(out, tmp);
	sim_buf_adds(out, ",\"Target\":");
	v = sim_org_score_target(org, s, &num);
	opt_num(out, v, num);
	sim_buf_adds(out, ",\"Measured\":");
	v = sim_org_score_value(org, s, &num);
	opt_num(out, v, num);
	sim_buf_adds(out, ",\"Week\":");
	sim_org_score_week(org, s, tmp);
	text(out, tmp);
	sim_buf_addf(out, ",\"ForWeek\":%d,\"DateEntered\":", sim_org_score_week_id(org, s));
	sim_api_write_date(out, sim_org_score_entered(org, s));
	sim_buf_adds(out, ",\"Meta\":{\"Source\":\"sim\"}}");
}

static void write_goal(sim_buf *out, const sim_org *org, long g, bool origins, sim_buf *tmp)
{
	const sim_goal *goal = &org->goals[g];
	long long id = (long long)sim_org_goal_id(g);
	sim_date due, create;
	bool archived;
	int i;

	sim_buf_addf(out, "{\"Id\":%lld,\"Type\":\"Rock\",\"Key\":\"Rock_%lld\",\"Name\":", id, id);
	sim_org_goal_name(org, g, tmp);
	text(out, tmp);
	sim_org_goal_dates(org, g, &due, &create);
	sim_buf_adds(out, ",\"DueDate\":");
	sim_api_write_date(out, due);
	sim_buf_addf(out, ",\"Complete\":%s,\"Completion\":", sim_org_goal_complete(org, g) ? "true" : "false");
	sim_buf_add_jstrs(out, sim_org_goal_completion(org, g));
	sim_buf_adds(out, ",\"CreateTime\":");
	sim_api_write_date(out, create);
	if (sim_org_goal_archived_key(org, g, &archived) == SIM_VALUE)
		sim_buf_addf(out, ",\"Archived\":%s", archived ? "true" : "false");
	sim_buf_adds(out, ",\"Owner\":");
	write_user_short(out, org, goal->owner, false, tmp);
	if (origins) {
		sim_buf_adds(out, ",\"Origins\":[");
		for (i = 0; i < SIM_GOAL_ORIGINS && goal->origins[i] >= 0; i++) {
			sim_buf_addf(out, "%s{\"Id\":%lld,\"Name\":", i ? "," : "",
				     (long long)sim_org_meeting_id(goal->origins[i]));
			sim_org_meeting_name(org, goal->origins[i], tmp);
			text(out, tmp);
			sim_buf_adds(out, ",\"Type\":\"L10Meeting\"}");
		}
		sim_buf_adds(out, "]");
	}
	sim_buf_addf(out, ",\"Ordering\":%ld}", g % 10);
}

static void write_origin(sim_buf *out, const sim_org *org, long m, bool with_id, sim_buf *tmp)
{
	sim_buf_adds(out, ",\"Origin\":");
	sim_org_meeting_name(org, m, tmp);
	text(out, tmp);
	if (with_id)
		sim_buf_addf(out, ",\"OriginId\":%lld", (long long)sim_org_meeting_id(m));
}

/* Meeting lists leave OriginId out (the meeting is the one asked). */
static void write_issue(sim_buf *out, const sim_org *org, long i, bool origin_id, sim_buf *tmp)
{
	const sim_item *it = &org->issues[i];
	long long id = (long long)sim_org_issue_id(i);
	sim_date create, close, complete;
	sim_val v;

	sim_buf_addf(out, "{\"Id\":%lld,\"Type\":\"IssueModel\",\"Key\":\"IssueModel_%lld\",\"Name\":", id, id);
	sim_org_issue_name(org, i, tmp);
	text(out, tmp);
	sim_buf_adds(out, ",\"DetailsUrl\":");
	v = sim_org_issue_details(org, i, tmp);
	opt_text(out, v, tmp);
	sim_org_issue_dates(org, i, &create, &close, &complete);
	sim_buf_addf(out, ",\"Complete\":%s,\"CreateTime\":", it->closed ? "true" : "false");
	sim_api_write_date(out, create);
	sim_buf_adds(out, ",\"CloseTime\":");
	sim_api_write_date(out, close);
	key_date(out, "CompleteTime", complete);
	sim_buf_addf(out, ",\"Archived\":%s,\"Owner\":", it->archived ? "true" : "false");
	if (it->owner < 0)
		sim_buf_adds(out, "null");
	else
		write_user_short(out, org, it->owner, false, tmp);
	write_origin(out, org, it->meeting, origin_id, tmp);
	sim_buf_addf(out, ",\"Priority\":%ld}", i % 4);
}

static void write_headline(sim_buf *out, const sim_org *org, long h, bool origin, sim_buf *tmp)
{
	const sim_item *it = &org->headlines[h];
	long long id = (long long)sim_org_headline_id(h);
	sim_date create, close;
	sim_val v;

	sim_buf_addf(out, "{\"Id\":%lld,\"Type\":\"HeadlineModel\",\"Key\":\"HeadlineModel_%lld\",\"Name\":",
		     id, id);
	sim_org_headline_name(org, h, tmp);
	text(out, tmp);
	sim_buf_adds(out, ",\"DetailsUrl\":");
	v = sim_org_headline_details(org, h, tmp);
	opt_text(out, v, tmp);
	sim_buf_adds(out, ",\"Owner\":");
	write_user_short(out, org, it->owner, false, tmp);
	sim_org_headline_dates(org, h, &create, &close);
	sim_buf_adds(out, ",\"CreateTime\":");
	sim_api_write_date(out, create);
	sim_buf_adds(out, ",\"CloseTime\":");
	sim_api_write_date(out, close);
	if (sim_org_headline_has_archived(org, h))
		sim_buf_addf(out, ",\"Archived\":%s", it->archived ? "true" : "false");
	if (origin)
		write_origin(out, org, it->meeting, true, tmp);
	sim_buf_adds(out, "}");
}

/* ---- endpoints ---- */

static bool term_matches(const sim_query *q, const char *name, size_t len)
{
	if (q->term == NULL || q->term[0] == '\0' || strcmp(q->term, "%") == 0)
		return true;
	(void)len;
	return strcasestr(name, q->term) != NULL;
}

static void ep_search_all(sim_buf *out, const sim_org *org, const sim_query *q, sim_buf *tmp)
{
	char name[64];
	pager p;
	long u;

	pager_init(&p, q);
	sim_buf_adds(out, "[");
	if (term_matches(q, "Acme Corp 🌍", 0) && pager_want(&p, out))
		write_search_other(out, SIM_ORG_ID, "Acme Corp 🌍", "Organization");
	for (u = 0; u < org->n_users; u++) {
		if (org->users[u].alive) {
			sim_org_user_name(org, u, tmp);
			if (term_matches(q, tmp->data ? tmp->data : "", tmp->len) && pager_want(&p, out))
				write_search_user(out, org, u, tmp);
		}
		if (u % 20 != 2)
			continue;
		snprintf(name, sizeof name, "Team 🌟 %ld", u / 20 + 1);
		if (term_matches(q, name, 0) && pager_want(&p, out))
			write_search_other(out, SIM_TEAM_BASE + u / 20, name, "Team");
		snprintf(name, sizeof name, "Position %ld", u / 20 + 1);
		if (term_matches(q, name, 0) && pager_want(&p, out))
			write_search_other(out, SIM_POSITION_BASE + u / 20, name, "Position");
	}
	sim_buf_adds(out, "]");
}

static void ep_l10_list(sim_buf *out, const sim_org *org, const sim_query *q, sim_buf *tmp)
{
	pager p;
	long m;

	pager_init(&p, q);
	sim_buf_adds(out, "[");
	for (m = 0; m < org->n_meetings; m++)
		if (pager_want(&p, out))
			write_list_row(out, org, m, tmp);
	sim_buf_adds(out, "]");
}

static void ep_user_list(sim_buf *out, const sim_org *org, long u, const sim_query *q, sim_buf *tmp)
{
	const sim_index *ix = &org->user_meetings;
	pager p;
	long i;

	pager_init(&p, q);
	sim_buf_adds(out, "[");
	for (i = ix->start[u]; i < ix->start[u + 1]; i++)
		if (pager_want(&p, out))
			write_list_row(out, org, org->attends[ix->items[i]].meeting, tmp);
	sim_buf_adds(out, "]");
}

static void ep_attendees(sim_buf *out, const sim_org *org, long m, const sim_query *q, sim_buf *tmp)
{
	const sim_index *ix = &org->meeting_attendees;
	pager p;
	long i;

	pager_init(&p, q);
	sim_buf_adds(out, "[");
	for (i = ix->start[m]; i < ix->start[m + 1]; i++) {
		long u = org->attends[ix->items[i]].user;

		if (pager_want(&p, out))
			write_user_short(out, org, u, u != 4, tmp);
	}
	sim_buf_adds(out, "]");
}

static void ep_meeting_todos(sim_buf *out, const sim_org *org, long m, const sim_query *q, sim_buf *tmp)
{
	const sim_index *ix = &org->meeting_todos;
	pager p;
	long i;

	pager_init(&p, q);
	sim_buf_adds(out, "[");
	for (i = ix->start[m]; i < ix->start[m + 1]; i++) {
		long t = ix->items[i];

		if ((org->todos[t].closed == 0 || q->include_closed) && pager_want(&p, out))
			write_todo(out, org, t, tmp);
	}
	sim_buf_adds(out, "]");
}

static void ep_user_todos(sim_buf *out, const sim_org *org, long u, const sim_query *q, sim_buf *tmp)
{
	const sim_index *ix = &org->user_todos;
	pager p;
	long i;

	pager_init(&p, q);
	sim_buf_adds(out, "[");
	for (i = ix->start[u]; i < ix->start[u + 1]; i++)
		if (pager_want(&p, out))
			write_todo(out, org, ix->items[i], tmp);
	sim_buf_adds(out, "]");
}

static void meas_rows(sim_buf *out, const sim_org *org, long m, pager *p, sim_buf *tmp)
{
	const sim_index *ix = &org->meeting_meas;
	long i, n = 0;

	for (i = ix->start[m]; i < ix->start[m + 1]; i++, n++) {
		if (n == 2 && pager_want(p, out))
			write_divider(out, m);
		if (pager_want(p, out))
			write_meas(out, org, ix->items[i], tmp);
	}
	if (n < 2 && pager_want(p, out))
		write_divider(out, m);
}

static void ep_measurables(sim_buf *out, const sim_org *org, long m, const sim_query *q, sim_buf *tmp)
{
	pager p;

	pager_init(&p, q);
	sim_buf_adds(out, "[");
	meas_rows(out, org, m, &p, tmp);
	sim_buf_adds(out, "]");
}

static void scores_of(sim_buf *out, const sim_org *org, long k, bool *first, sim_buf *tmp)
{
	const sim_index *ix = &org->meas_scores;
	long i;

	for (i = ix->start[k]; i < ix->start[k + 1]; i++) {
		if (!*first)
			sim_buf_add(out, ",", 1);
		*first = false;
		write_score(out, org, ix->items[i], tmp);
	}
}

static void write_weeks(sim_buf *out, const sim_org *org)
{
	long w;

	sim_buf_adds(out, ",\"Weeks\":[");
	for (w = 0; w < org->params.weeks && w < 13; w++)
		sim_buf_addf(out, "%s{\"ForWeekNumber\":%ld}", w ? "," : "", 2830 + w);
	sim_buf_adds(out, "]}");
}

static void ep_scorecard_meeting(sim_buf *out, const sim_org *org, long m, sim_buf *tmp)
{
	const sim_index *ix = &org->meeting_meas;
	sim_query all = { .include_closed = false, .page = 1, .page_size = 0, .term = NULL };
	bool first = true;
	pager p;
	long i;

	sim_buf_adds(out, "{\"Scores\":[");
	for (i = ix->start[m]; i < ix->start[m + 1]; i++)
		scores_of(out, org, ix->items[i], &first, tmp);
	sim_buf_adds(out, "],\"Measurables\":[");
	pager_init(&p, &all);
	meas_rows(out, org, m, &p, tmp);
	sim_buf_adds(out, "]");
	write_weeks(out, org);
}

static void ep_scorecard_user(sim_buf *out, const sim_org *org, long u, sim_buf *tmp)
{
	const sim_index *ix = &org->user_scores;
	long i;

	sim_buf_adds(out, "{\"Scores\":[");
	for (i = ix->start[u]; i < ix->start[u + 1]; i++) {
		if (i > ix->start[u])
			sim_buf_add(out, ",", 1);
		write_score(out, org, ix->items[i], tmp);
	}
	sim_buf_adds(out, "],\"Measurables\":[]");
	write_weeks(out, org);
}

static void ep_weeks_current(sim_buf *out)
{
	sim_buf_adds(out, "{\"Id\":2836,\"Type\":\"Week\",\"ForWeekNumber\":2836,"
			  "\"ForWeek\":\"2024-04-14T00:00:00\",\"LocalDate\":{\"Date\":\"2024-04-08T00:00:00\"}}");
}

static void ep_user_goals(sim_buf *out, const sim_org *org, long u, bool archived, const sim_query *q, sim_buf *tmp)
{
	const sim_index *ix = &org->user_goals;
	bool first = true;
	long i;

	sim_buf_adds(out, "[");
	for (i = ix->start[u]; i < ix->start[u + 1]; i++) {
		long g = ix->items[i];

		if (org->goals[g].archived != archived)
			continue;
		if (!first)
			sim_buf_add(out, ",", 1);
		first = false;
		/* archivedrocks takes no include_origin: it always carries Origins */
		write_goal(out, org, g, archived || q->include_origin, tmp);
	}
	sim_buf_adds(out, "]");
}

static void ep_user_items(sim_buf *out, const sim_org *org, long u, bool issues, sim_buf *tmp)
{
	const sim_index *ix = issues ? &org->user_issues : &org->user_headlines;
	long i;

	sim_buf_adds(out, "[");
	for (i = ix->start[u]; i < ix->start[u + 1]; i++) {
		if (i > ix->start[u])
			sim_buf_add(out, ",", 1);
		if (issues)
			write_issue(out, org, ix->items[i], true, tmp);
		else
			write_headline(out, org, ix->items[i], true, tmp);
	}
	sim_buf_adds(out, "]");
}

static void ep_meeting_issues(sim_buf *out, const sim_org *org, long m, const sim_query *q, sim_buf *tmp)
{
	const sim_index *ix = &org->meeting_issues;
	bool first = true;
	long i;

	sim_buf_adds(out, "[");
	for (i = ix->start[m]; i < ix->start[m + 1]; i++) {
		long row = ix->items[i];

		if (org->issues[row].closed && !q->include_resolved)
			continue;
		if (!first)
			sim_buf_add(out, ",", 1);
		first = false;
		write_issue(out, org, row, false, tmp);
	}
	sim_buf_adds(out, "]");
}

static void ep_meeting_headlines(sim_buf *out, const sim_org *org, long m, const sim_query *q, sim_buf *tmp)
{
	const sim_index *ix = &org->meeting_headlines;
	long i;

	sim_buf_adds(out, "[");
	for (i = ix->start[m]; i < ix->start[m + 1]; i++) {
		if (i > ix->start[m])
			sim_buf_add(out, ",", 1);
		write_headline(out, org, ix->items[i], q->include_origin, tmp);
	}
	sim_buf_adds(out, "]");
}

static int by_user(sim_buf *out, const sim_org *org, sim_endpoint ep, int64_t id, const sim_query *q, sim_buf *tmp)
{
	long u = sim_org_find_user(org, id);

	if (u < 0)
		return 404;
	switch (ep) {
	case SIM_EP_USER: write_user_short(out, org, u, true, tmp); break;
	case SIM_EP_L10_USER_LIST: ep_user_list(out, org, u, q, tmp); break;
	case SIM_EP_SCORECARD_USER: ep_scorecard_user(out, org, u, tmp); break;
	case SIM_EP_ROCKS_USER: ep_user_goals(out, org, u, false, q, tmp); break;
	case SIM_EP_ARCHIVED_ROCKS_USER: ep_user_goals(out, org, u, true, q, tmp); break;
	case SIM_EP_ISSUES_USER: ep_user_items(out, org, u, true, tmp); break;
	case SIM_EP_HEADLINE_USER: ep_user_items(out, org, u, false, tmp); break;
	default: ep_user_todos(out, org, u, q, tmp); break;
	}
	return 200;
}

static int by_meeting(sim_buf *out, const sim_org *org, sim_endpoint ep, int64_t id, const sim_query *q, sim_buf *tmp)
{
	long m = sim_org_find_meeting(org, id);

	if (m < 0)
		return 404;
	switch (ep) {
	case SIM_EP_L10_MEETING: write_meeting(out, org, m, tmp); break;
	case SIM_EP_L10_ATTENDEES: ep_attendees(out, org, m, q, tmp); break;
	case SIM_EP_L10_TODOS: ep_meeting_todos(out, org, m, q, tmp); break;
	case SIM_EP_L10_MEASURABLES: ep_measurables(out, org, m, q, tmp); break;
	case SIM_EP_L10_ISSUES: ep_meeting_issues(out, org, m, q, tmp); break;
	case SIM_EP_L10_HEADLINES: ep_meeting_headlines(out, org, m, q, tmp); break;
	default: ep_scorecard_meeting(out, org, m, tmp); break;
	}
	return 200;
}

static int dispatch(sim_buf *out, const sim_org *org, sim_endpoint ep, int64_t id, const sim_query *q, sim_buf *tmp)
{
	long t;

	switch (ep) {
	case SIM_EP_USERS_MINE: write_user_short(out, org, 0, true, tmp); return 200;
	case SIM_EP_SEARCH_ALL: ep_search_all(out, org, q, tmp); return 200;
	case SIM_EP_L10_LIST: ep_l10_list(out, org, q, tmp); return 200;
	case SIM_EP_WEEKS_CURRENT: ep_weeks_current(out); return 200;
	case SIM_EP_USER:
	case SIM_EP_L10_USER_LIST:
	case SIM_EP_SCORECARD_USER:
	case SIM_EP_TODO_USER:
	case SIM_EP_ROCKS_USER:
	case SIM_EP_ARCHIVED_ROCKS_USER:
	case SIM_EP_ISSUES_USER:
	case SIM_EP_HEADLINE_USER:
		return by_user(out, org, ep, id, q, tmp);
	case SIM_EP_L10_MEETING:
	case SIM_EP_L10_ATTENDEES:
	case SIM_EP_L10_TODOS:
	case SIM_EP_L10_MEASURABLES:
	case SIM_EP_SCORECARD_MEETING:
	case SIM_EP_L10_ISSUES:
	case SIM_EP_L10_HEADLINES:
		return by_meeting(out, org, ep, id, q, tmp);
	case SIM_EP_TODO:
		t = sim_org_find_todo(org, id);
		if (t < 0)
			return 404;
		write_todo(out, org, t, tmp);
		return 200;
	default:
		return 404;
	}
}

int sim_api_respond(const sim_org *org, sim_endpoint ep, int64_t id, const sim_query *q, sim_buf *out)
{
	sim_buf tmp;
	int status;

	sim_buf_init(&tmp);
	sim_buf_clear(out);
	status = dispatch(out, org, ep, id, q, &tmp);
	if (status == 404) {
		sim_buf_clear(out);
		sim_buf_adds(out, "{\"Message\":\"No HTTP resource was found that matches the request URI.\"}");
	}
	if (!sim_buf_ok(out) || !sim_buf_ok(&tmp)) {
		sim_buf_clear(out);
		sim_buf_adds(out, "{\"Message\":\"out of memory\"}");
		status = 500;
	}
	sim_buf_free(&tmp);
	return status;
}
