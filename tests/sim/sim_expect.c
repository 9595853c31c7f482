/* sim_expect.c — the expected mirror of the simulated organisation. */
#include "sim_expect.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct ctx {
	const sim_org *org;
	sim_buf *out;
	sim_buf tmp;
	bool *meetings;  /* mirrored meetings */
	bool *todos;     /* mirrored todos */
	bool *meas;      /* mirrored measurables */
	bool *scores;    /* mirrored scores */
	bool *goals;     /* mirrored goals */
	bool *issues;    /* mirrored issues */
	bool *headlines; /* mirrored headlines */
	int64_t *ids;    /* scratch for sorting, n_users + n_meas entries */
	bool first;      /* no row written yet in the current table */
} ctx;

/* ---- values, with the mirror's rules ---- */

/* Text without its NUL characters; "" becomes null when nullable. */
static void col_text(ctx *c, const char *col, const sim_buf *raw, bool nullable)
{
	sim_buf clean;
	size_t i;

	sim_buf_init(&clean);
	for (i = 0; i < raw->len; i++)
		if (raw->data[i] != '\0')
			sim_buf_add(&clean, raw->data + i, 1);
	sim_buf_addf(c->out, ",\"%s\":", col);
	if (nullable && clean.len == 0)
		sim_buf_adds(c->out, "null");
	else
		sim_buf_add_jstr(c->out, clean.data ? clean.data : "", clean.len);
	if (!sim_buf_ok(&clean))
		c->out->oom = true;
	sim_buf_free(&clean);
}

static void col_opt_text(ctx *c, const char *col, sim_val v, const sim_buf *raw)
{
	if (v == SIM_VALUE)
		col_text(c, col, raw, true);
	else
		sim_buf_addf(c->out, ",\"%s\":null", col);
}

static void col_cstr(ctx *c, const char *col, const char *s)
{
	sim_buf_addf(c->out, ",\"%s\":", col);
	sim_buf_add_jstrs(c->out, s);
}

static void col_num(ctx *c, const char *col, sim_val v, double num)
{
	sim_buf_addf(c->out, ",\"%s\":", col);
	if (v == SIM_VALUE)
		sim_buf_add_num(c->out, num);
	else
		sim_buf_adds(c->out, "null");
}

static void col_int(ctx *c, const char *col, int64_t v)
{
	sim_buf_addf(c->out, ",\"%s\":%lld", col, (long long)v);
}

void sim_expect_write_timestamp(sim_buf *out, sim_date d)
{
	int y, mo, da, h, mi, s, i;
	char digits[16];
	int n;
	int64_t secs;

	if (d.kind == SIM_DATE_ABSENT || d.kind == SIM_DATE_NULL || d.kind == SIM_DATE_EMPTY) {
		sim_buf_adds(out, "null");
		return;
	}
	secs = d.kind == SIM_DATE_DAY ? d.secs - d.secs % 86400 : d.secs;
	n = 0;
	if (d.kind != SIM_DATE_DAY && d.frac_digits > 0) {
		snprintf(digits, sizeof digits, "0.%0*u", d.frac_digits, d.frac);
		n = d.frac_digits;
		if (n > 6) {
			/* as PostgreSQL reads a fraction (ParseFractionalSecond):
			 * rint(strtod(fraction) * 1e6) microseconds; the carry
			 * of .9999995 and above goes into the seconds */
			double us = rint(strtod(digits, NULL) * 1000000);
			if (us >= 1000000) {
				secs++;
				us = 0;
			}
			snprintf(digits, sizeof digits, "0.%06u", (unsigned)us);
			n = 6;
		}
		while (n > 0 && digits[n + 1] == '0')
			n--;
	}
	sim_org_civil(secs, &y, &mo, &da, &h, &mi, &s);
	sim_buf_addf(out, "\"%04d-%02d-%02dT%02d:%02d:%02d", y, mo, da, h, mi, s);
	if (n > 0) {
		sim_buf_add(out, ".", 1);
		for (i = 0; i < n; i++)
			sim_buf_add(out, digits + 2 + i, 1);
	}
	sim_buf_adds(out, "Z\"");
}

static void col_time(ctx *c, const char *col, sim_date d)
{
	sim_buf_addf(c->out, ",\"%s\":", col);
	sim_expect_write_timestamp(c->out, d);
}

/* ---- tables ---- */

static void table_begin(ctx *c, const char *name, bool first_table)
{
	sim_buf_addf(c->out, "%s\"%s\":[", first_table ? "{\n" : ",\n", name);
	c->first = true;
}

static void row_begin(ctx *c, const char *key, int64_t id)
{
	sim_buf_addf(c->out, "%s{\"%s\":%lld", c->first ? "\n" : ",\n", key, (long long)id);
	c->first = false;
}

static void users(ctx *c)
{
	const sim_org *org = c->org;
	long u;

	table_begin(c, "users", true);
	for (u = 0; u < org->n_users; u++) {
		sim_val email, title;
		bool placeholder;

		if (!org->users[u].alive)
			continue;
		row_begin(c, "id", sim_org_user_id(u));
		sim_org_user_name(org, u, &c->tmp);
		col_text(c, "name", &c->tmp, false);
		email = sim_org_user_email(org, u, &c->tmp);
		placeholder = email != SIM_VALUE || c->tmp.len == 0;
		col_opt_text(c, "email", email, &c->tmp);
		title = sim_org_user_title(org, u, &c->tmp);
		col_opt_text(c, "title", title, &c->tmp);
		sim_org_user_image(org, u, &c->tmp);
		placeholder = placeholder || strcmp(c->tmp.data, "/i/userplaceholder") == 0;
		col_text(c, "image_url", &c->tmp, true);
		col_int(c, "organization_id", SIM_ORG_ID);
		sim_buf_addf(c->out, ",\"is_placeholder\":%s}", placeholder ? "true" : "false");
	}
	sim_buf_adds(c->out, "\n]");
}

static void meetings(ctx *c)
{
	const sim_org *org = c->org;
	int64_t org_id;
	long m;

	table_begin(c, "meetings", false);
	for (m = 0; m < org->n_meetings; m++) {
		int64_t id = sim_org_meeting_id(m);

		if (!c->meetings[m])
			continue;
		row_begin(c, "id", id);
		sim_org_meeting_name(org, m, &c->tmp);
		col_text(c, "name", &c->tmp, true);
		col_cstr(c, "meeting_type", "NameId");
		sim_buf_addf(c->out, ",\"meeting_key\":\"NameId_%lld\"", (long long)id);
		col_time(c, "start_date_utc", sim_org_meeting_start(org, m));
		col_time(c, "created_at", sim_org_meeting_created(org, m));
		if (sim_org_meeting_org_id(org, m, &org_id) == SIM_VALUE)
			col_int(c, "organization_id", org_id);
		else
			sim_buf_adds(c->out, ",\"organization_id\":null");
		sim_buf_adds(c->out, "}");
	}
	sim_buf_adds(c->out, "\n]");
}

static int cmp_id(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static void attendees(ctx *c)
{
	const sim_org *org = c->org;
	const sim_index *ix = &org->meeting_attendees;
	long m, i, n;

	table_begin(c, "meeting_attendees", false);
	for (m = 0; m < org->n_meetings; m++) {
		if (!c->meetings[m])
			continue;
		for (n = 0, i = ix->start[m]; i < ix->start[m + 1]; i++)
			c->ids[n++] = sim_org_user_id(org->attends[ix->items[i]].user);
		qsort(c->ids, (size_t)n, sizeof *c->ids, cmp_id);
		for (i = 0; i < n; i++) {
			row_begin(c, "meeting_id", sim_org_meeting_id(m));
			sim_buf_addf(c->out, ",\"user_id\":%lld}", (long long)c->ids[i]);
		}
	}
	sim_buf_adds(c->out, "\n]");
}

static void todos(ctx *c)
{
	const sim_org *org = c->org;
	sim_todo_dates d;
	long t;

	table_begin(c, "todos", false);
	for (t = 0; t < org->n_todos; t++) {
		const sim_todo *todo = &org->todos[t];
		sim_val v;

		if (!c->todos[t])
			continue;
		row_begin(c, "id", SIM_TODO_BASE + t);
		sim_org_todo_name(org, t, &c->tmp);
		col_text(c, "name", &c->tmp, false);
		v = sim_org_todo_details(org, t, &c->tmp);
		col_opt_text(c, "details_url", v, &c->tmp);
		sim_org_todo_dates(org, t, &d);
		col_time(c, "due_date", d.due);
		col_time(c, "created_at", d.create);
		col_time(c, "completed_at", d.complete);
		col_time(c, "closed_at", d.close);
		sim_buf_addf(c->out, ",\"is_complete\":%s", todo->closed ? "true" : "false");
		if (todo->meeting < 0) {
			sim_buf_adds(c->out, ",\"meeting_id\":null,\"meeting_name\":\"Individual\"");
		} else {
			col_int(c, "meeting_id", sim_org_meeting_id(todo->meeting));
			sim_org_meeting_name(org, todo->meeting, &c->tmp);
			col_text(c, "meeting_name", &c->tmp, true);
		}
		col_int(c, "owner_id", sim_org_user_id(todo->owner));
		sim_buf_adds(c->out, "}");
	}
	sim_buf_adds(c->out, "\n]");
}

static void measurables(ctx *c)
{
	const sim_org *org = c->org;
	double target;
	sim_val v;
	long k;

	table_begin(c, "measurables", false);
	for (k = 0; k < org->n_meas; k++) {
		if (!c->meas[k])
			continue;
		row_begin(c, "id", sim_org_meas_id(k));
		sim_org_meas_name(org, k, &c->tmp);
		col_text(c, "name", &c->tmp, true);
		v = sim_org_meas_target(org, k, &target);
		col_num(c, "target", v, target);
		col_cstr(c, "unit", sim_org_meas_unit(org, k));
		col_cstr(c, "direction", sim_org_meas_direction(org, k));
		col_int(c, "owner_id", sim_org_user_id(org->meas[k].owner));
		sim_buf_adds(c->out, "}");
	}
	sim_buf_adds(c->out, "\n]");
}

static void meeting_measurables(ctx *c)
{
	const sim_org *org = c->org;
	const sim_index *ix = &org->meeting_meas;
	long m, i, n;

	table_begin(c, "meeting_measurables", false);
	for (m = 0; m < org->n_meetings; m++) {
		if (!c->meetings[m])
			continue;
		for (n = 0, i = ix->start[m]; i < ix->start[m + 1]; i++)
			c->ids[n++] = sim_org_meas_id(ix->items[i]);
		qsort(c->ids, (size_t)n, sizeof *c->ids, cmp_id);
		for (i = 0; i < n; i++) {
			row_begin(c, "meeting_id", sim_org_meeting_id(m));
			sim_buf_addf(c->out, ",\"measurable_id\":%lld}", (long long)c->ids[i]);
		}
	}
	sim_buf_adds(c->out, "\n]");
}

static void scores(ctx *c)
{
	const sim_org *org = c->org;
	double num;
	sim_val v;
	long s;

	table_begin(c, "scores", false);
	for (s = 0; s < org->n_scores; s++) {
		const sim_score *score = &org->scores[s];

		if (!c->scores[s])
			continue;
		row_begin(c, "id", sim_org_score_id(s));
		col_int(c, "measurable_id", sim_org_meas_id(score->meas));
		col_int(c, "accountable_user_id", sim_org_user_id(score->user));
		sim_org_meas_name(org, score->meas, &c->tmp);
		col_text(c, "measurable_name", &c->tmp, true);
		v = sim_org_score_target(org, s, &num);
		col_num(c, "target", v, num);
		v = sim_org_score_value(org, s, &num);
		col_num(c, "value", v, num);
		sim_org_score_week(org, s, &c->tmp);
		col_text(c, "week", &c->tmp, true);
		col_int(c, "week_id", sim_org_score_week_id(org, s));
		col_time(c, "entered_at", sim_org_score_entered(org, s));
		sim_buf_adds(c->out, "}");
	}
	sim_buf_adds(c->out, "\n]");
}

/* Goals: rows of rocks/user and archivedrocks/user; is_archived is true
 * for the latter, else the Archived key (absent = false). */
static void goals(ctx *c)
{
	const sim_org *org = c->org;
	sim_date due, create;
	bool archived;
	long g;

	table_begin(c, "goals", false);
	for (g = 0; g < org->n_goals; g++) {
		const sim_goal *goal = &org->goals[g];

		if (!c->goals[g])
			continue;
		row_begin(c, "id", sim_org_goal_id(g));
		sim_org_goal_name(org, g, &c->tmp);
		col_text(c, "name", &c->tmp, false);
		col_int(c, "owner_id", sim_org_user_id(goal->owner));
		sim_org_goal_dates(org, g, &due, &create);
		col_time(c, "due_date", due);
		col_time(c, "created_at", create);
		sim_buf_addf(c->out, ",\"is_complete\":%s", sim_org_goal_complete(org, g) ? "true" : "false");
		sim_buf_clear(&c->tmp);
		sim_buf_adds(&c->tmp, sim_org_goal_completion(org, g));
		col_text(c, "completion", &c->tmp, true);
		if (sim_org_goal_archived_key(org, g, &archived) != SIM_VALUE)
			archived = false;
		sim_buf_addf(c->out, ",\"is_archived\":%s}", goal->archived || archived ? "true" : "false");
	}
	sim_buf_adds(c->out, "\n]");
}

static void goal_meetings(ctx *c)
{
	const sim_org *org = c->org;
	long g;
	int i;

	table_begin(c, "goal_meetings", false);
	for (g = 0; g < org->n_goals; g++) {
		if (!c->goals[g])
			continue;
		for (i = 0; i < SIM_GOAL_ORIGINS && org->goals[g].origins[i] >= 0; i++) {
			row_begin(c, "goal_id", sim_org_goal_id(g));
			sim_buf_addf(c->out, ",\"meeting_id\":%lld}",
				     (long long)sim_org_meeting_id(org->goals[g].origins[i]));
		}
	}
	sim_buf_adds(c->out, "\n]");
}

/* The columns issues and headlines share: owner, meeting (the one asked, or
 * OriginId: the same meeting) and its name (Origin). */
static void item_common(ctx *c, const sim_item *it)
{
	if (it->owner < 0)
		sim_buf_adds(c->out, ",\"owner_id\":null");
	else
		col_int(c, "owner_id", sim_org_user_id(it->owner));
	col_int(c, "meeting_id", sim_org_meeting_id(it->meeting));
	sim_org_meeting_name(c->org, it->meeting, &c->tmp);
	col_text(c, "meeting_name", &c->tmp, true);
}

static void issues(ctx *c)
{
	const sim_org *org = c->org;
	sim_date create, close, complete;
	sim_val v;
	long i;

	table_begin(c, "issues", false);
	for (i = 0; i < org->n_issues; i++) {
		const sim_item *it = &org->issues[i];

		if (!c->issues[i])
			continue;
		row_begin(c, "id", sim_org_issue_id(i));
		sim_org_issue_name(org, i, &c->tmp);
		col_text(c, "name", &c->tmp, false);
		v = sim_org_issue_details(org, i, &c->tmp);
		col_opt_text(c, "details_url", v, &c->tmp);
		item_common(c, it);
		sim_org_issue_dates(org, i, &create, &close, &complete);
		col_time(c, "created_at", create);
		col_time(c, "closed_at", close);
		col_time(c, "completed_at", complete);
		sim_buf_addf(c->out, ",\"is_complete\":%s,\"is_archived\":%s}", it->closed ? "true" : "false",
			     it->archived ? "true" : "false");
	}
	sim_buf_adds(c->out, "\n]");
}

static void headlines(ctx *c)
{
	const sim_org *org = c->org;
	sim_date create, close;
	sim_val v;
	long h;

	table_begin(c, "headlines", false);
	for (h = 0; h < org->n_headlines; h++) {
		const sim_item *it = &org->headlines[h];
		bool archived = it->archived && sim_org_headline_has_archived(org, h);

		if (!c->headlines[h])
			continue;
		row_begin(c, "id", sim_org_headline_id(h));
		sim_org_headline_name(org, h, &c->tmp);
		col_text(c, "name", &c->tmp, false);
		v = sim_org_headline_details(org, h, &c->tmp);
		col_opt_text(c, "details_url", v, &c->tmp);
		item_common(c, it);
		sim_org_headline_dates(org, h, &create, &close);
		col_time(c, "created_at", create);
		col_time(c, "closed_at", close);
		sim_buf_addf(c->out, ",\"is_archived\":%s}", archived ? "true" : "false");
	}
	sim_buf_adds(c->out, "\n]\n}\n");
}

/* ---- which rows a complete sync sees ---- */

static void mark_all(const sim_index *ix, long group, bool *marks)
{
	long i;

	for (i = ix->start[group]; i < ix->start[group + 1]; i++)
		marks[ix->items[i]] = true;
}

static void mark(ctx *c)
{
	const sim_org *org = c->org;
	long u, m, i, t;

	for (u = 0; u < org->n_users; u++) {
		const sim_index *ix = &org->user_meetings;

		if (!org->users[u].alive)
			continue;
		for (i = ix->start[u]; i < ix->start[u + 1]; i++)
			c->meetings[org->attends[ix->items[i]].meeting] = true;
		mark_all(&org->user_todos, u, c->todos);
		mark_all(&org->user_scores, u, c->scores);
		mark_all(&org->user_goals, u, c->goals);
		mark_all(&org->user_issues, u, c->issues);
		mark_all(&org->user_headlines, u, c->headlines);
	}
	for (m = 0; m < org->n_meetings; m++) {
		const sim_index *ix = &org->meeting_meas;

		if (!c->meetings[m])
			continue;
		mark_all(&org->meeting_todos, m, c->todos);
		mark_all(&org->meeting_issues, m, c->issues);
		mark_all(&org->meeting_headlines, m, c->headlines);
		mark_all(ix, m, c->meas);
		for (i = ix->start[m]; i < ix->start[m + 1]; i++)
			mark_all(&org->meas_scores, ix->items[i], c->scores);
	}
	for (t = 0; t < org->n_todos; t++)
		if (org->todos[t].milestone)
			c->todos[t] = false;
}

int sim_expect_write(const sim_org *org, sim_buf *out)
{
	ctx c = { .org = org, .out = out };
	int rc = -1;

	sim_buf_init(&c.tmp);
	sim_buf_clear(out);
	c.meetings = calloc((size_t)org->n_meetings + 1, sizeof *c.meetings);
	c.todos = calloc((size_t)org->n_todos + 1, sizeof *c.todos);
	c.meas = calloc((size_t)org->n_meas + 1, sizeof *c.meas);
	c.scores = calloc((size_t)org->n_scores + 1, sizeof *c.scores);
	c.ids = calloc((size_t)(org->n_users + org->n_meas) + 1, sizeof *c.ids);
	c.goals = calloc((size_t)org->n_goals + 1, sizeof *c.goals);
	c.issues = calloc((size_t)org->n_issues + 1, sizeof *c.issues);
	c.headlines = calloc((size_t)org->n_headlines + 1, sizeof *c.headlines);
	if (c.meetings == NULL || c.todos == NULL || c.meas == NULL || c.scores == NULL || c.ids == NULL ||
	    c.goals == NULL || c.issues == NULL || c.headlines == NULL)
		goto done;
	mark(&c);
	users(&c);
	meetings(&c);
	attendees(&c);
	todos(&c);
	measurables(&c);
	meeting_measurables(&c);
	scores(&c);
	goals(&c);
	goal_meetings(&c);
	issues(&c);
	headlines(&c);
	if (sim_buf_ok(out) && sim_buf_ok(&c.tmp))
		rc = 0;
done:
	free(c.meetings);
	free(c.todos);
	free(c.meas);
	free(c.scores);
	free(c.ids);
	free(c.goals);
	free(c.issues);
	free(c.headlines);
	sim_buf_free(&c.tmp);
	return rc;
}
