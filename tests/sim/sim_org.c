/* sim_org.c — generation, mutation and derived values of the simulated org. */
#include "sim_org.h"

#include <stdlib.h>
#include <string.h>

#include "sim_rng.h"

#define DAY 86400LL
#define BASE_TIME 1704067200LL /* 2024-01-01T00:00:00Z */

static const char *const first_names[16] = {
	"Alice", "Bruno", "Chen", "Dmitri", "Eva", "Farah", "Gustav", "Hana",
	"Ivan", "Julia", "Kofi", "Lena", "Mateo", "Nora", "Omar", "Priya",
};
static const char *const last_names[16] = {
	"Smith", "García", "Wang", "Kowalski", "Okafor", "Müller", "Rossi", "Kim",
	"Silva", "Novak", "Haddad", "Larsen", "Tanaka", "Dubois", "Cohen", "Brown",
};
static const char *const titles[8] = {
	"Engineer", "Sales Lead", "Designer", "Controller",
	"Support Agent", "Product Manager", "Recruiter", "Analyst",
};
static const char *const todo_verbs[8] = {
	"Call", "Review", "Prepare", "Email", "Draft", "Check", "Update", "Plan",
};
static const char *const todo_objects[8] = {
	"the Q3 forecast", "supplier contract", "onboarding plan", "board deck",
	"hiring pipeline", "pricing page", "support backlog", "offsite agenda",
};
static const char *const directions[6] = {
	"GreaterThan", "LessThanOrEqual", "LessThan", "EqualTo", "GreaterThanNotEqual", "Between",
};
static const char *const units[5] = { "None", "Dollar", "Percent", "Pound", "Euros" };
static const char *const completions[4] = { "OnTrack", "AtRisk", "OffTrack", "Complete" };
static const char *const issue_topics[6] = {
	"churn in SMB", "late invoices", "hiring freeze", "server costs", "vendor delay", "NPS drop",
};

/* ---- ids and lookups ---- */

int64_t sim_org_user_id(long u)
{
	return SIM_USER_BASE + u;
}

int64_t sim_org_meeting_id(long m)
{
	return SIM_MEET_BASE + m;
}

int64_t sim_org_todo_id(const sim_org *org, long t)
{
	return org->todos[t].milestone ? -(SIM_TODO_BASE + t) : SIM_TODO_BASE + t;
}

int64_t sim_org_meas_id(long k)
{
	return SIM_MEAS_BASE + k;
}

int64_t sim_org_score_id(long s)
{
	return SIM_SCORE_BASE + s;
}

long sim_org_find_user(const sim_org *org, int64_t id)
{
	int64_t u = id - SIM_USER_BASE;

	if (u < 0 || u >= org->n_users || !org->users[u].alive)
		return -1;
	return (long)u;
}

long sim_org_find_meeting(const sim_org *org, int64_t id)
{
	int64_t m = id - SIM_MEET_BASE;

	if (m < 0 || m >= org->n_meetings)
		return -1;
	return (long)m;
}

long sim_org_find_todo(const sim_org *org, int64_t id)
{
	bool milestone = id < 0;
	int64_t t = (milestone ? -id : id) - SIM_TODO_BASE;

	if (t < 0 || t >= org->n_todos || !org->todos[t].alive)
		return -1;
	if (org->todos[t].milestone != milestone)
		return -1;
	return (long)t;
}

/* ---- strings ---- */

static void add_suffix(sim_buf *out, uint32_t rename)
{
	if (rename > 0)
		sim_buf_addf(out, " (v%u)", rename);
}

void sim_org_user_name(const sim_org *org, long u, sim_buf *out)
{
	static const char nul_name[] = "山田\0太郎";
	uint64_t h = sim_rng_hash(org->params.seed, (uint64_t)u, 1);

	sim_buf_clear(out);
	switch (u) {
	case 0: sim_buf_adds(out, "Zoë Ångström-Núñez"); break;
	case 1: sim_buf_adds(out, "Rocket 🚀 Ranger 👩‍💻"); break;
	case 2: sim_buf_adds(out, "دانا حداد"); break;
	case 3: sim_buf_add(out, nul_name, sizeof nul_name - 1); break;
	case 4: sim_buf_adds(out, "Tab\there\nNew \"Q\" Back\\slash \\N"); break;
	default:
		sim_buf_addf(out, "%s %s", first_names[h % 16], last_names[(h >> 8) % 16]);
	}
	add_suffix(out, org->users[u].rename);
}

sim_val sim_org_user_email(const sim_org *org, long u, sim_buf *out)
{
	static const char *const fixed[SIM_FIXED_USERS] = {
		"zoe@example.com", "", "dana@example.com", "yamada@example.com", NULL,
	};

	(void)org;
	sim_buf_clear(out);
	if (u < SIM_FIXED_USERS) {
		if (fixed[u] == NULL)
			return SIM_NULL;
		sim_buf_adds(out, fixed[u]);
		return SIM_VALUE;
	}
	if (u % 13 == 7)
		return SIM_VALUE; /* "" : a placeholder */
	sim_buf_addf(out, "user%lld@example.com", (long long)sim_org_user_id(u));
	return SIM_VALUE;
}

sim_val sim_org_user_title(const sim_org *org, long u, sim_buf *out)
{
	static const char *const fixed[SIM_FIXED_USERS] = {
		"CEO", "Head of 🚀", "مدير", NULL, "",
	};
	uint64_t h = sim_rng_hash(org->params.seed, (uint64_t)u, 2);

	sim_buf_clear(out);
	if (u < SIM_FIXED_USERS) {
		if (fixed[u] == NULL)
			return SIM_NULL;
		sim_buf_adds(out, fixed[u]);
		return SIM_VALUE;
	}
	if (u % 11 == 10)
		return SIM_NULL;
	if (u % 7 != 6)
		sim_buf_adds(out, titles[h % 8]);
	return SIM_VALUE;
}

void sim_org_user_image(const sim_org *org, long u, sim_buf *out)
{
	(void)org;
	sim_buf_clear(out);
	if (u == 2 || (u >= SIM_FIXED_USERS && u % 11 == 9))
		sim_buf_adds(out, "/i/userplaceholder");
	else
		sim_buf_addf(out, "https://cdn.example.com/u/%lld.png", (long long)sim_org_user_id(u));
}

void sim_org_meeting_name(const sim_org *org, long m, sim_buf *out)
{
	(void)org;
	sim_buf_clear(out);
	switch (m) {
	case 0: sim_buf_adds(out, "Leadership L10 ✨"); break;
	case 1: sim_buf_adds(out, "Réunion d'équipe \"Nord\" 北"); break;
	case 2: sim_buf_adds(out, "Ops\tWeekly \\N"); break;
	default: sim_buf_addf(out, "Team Meeting %ld", m);
	}
}

static void long_text(sim_buf *out)
{
	static const char unit[] = "lorem ipsum dolor sit amet, é 🚀 中文 — ";

	sim_buf_adds(out, "Long todo: ");
	while (out->len < 40000 && sim_buf_ok(out))
		sim_buf_adds(out, unit);
}

void sim_org_todo_name(const sim_org *org, long t, sim_buf *out)
{
	static const char nul_name[] = "Ship v2\0 release";
	const sim_todo *todo = &org->todos[t];
	uint64_t h = sim_rng_hash(org->params.seed, (uint64_t)t, 3);

	sim_buf_clear(out);
	if (t < SIM_FIXED_TODOS && !todo->milestone) {
		switch (t) {
		case 0: sim_buf_add(out, nul_name, sizeof nul_name - 1); break;
		case 1: long_text(out); break;
		case 2: sim_buf_adds(out, "Fix \"quotes\"\tand\nnewlines \\ back\\slash \\N end"); break;
		case 3: sim_buf_adds(out, "Réviser le budget — تقرير 季度报告 📈"); break;
		case 4: sim_buf_adds(out, "Due on a date-only day"); break;
		case 5: sim_buf_adds(out, "Closed with 7-digit fractions"); break;
		case 6: sim_buf_adds(out, "Open without CloseTime"); break;
		default: sim_buf_adds(out, "Closed the plain way"); break;
		}
	} else if (todo->milestone) {
		sim_buf_addf(out, "Milestone %ld: launch", t);
	} else if (todo->meeting < 0) {
		sim_buf_addf(out, "Personal: %s %s", todo_verbs[h % 8], todo_objects[(h >> 8) % 8]);
	} else {
		sim_buf_addf(out, "%s %s #%ld", todo_verbs[h % 8], todo_objects[(h >> 8) % 8], t);
	}
	add_suffix(out, todo->rename);
}

sim_val sim_org_todo_details(const sim_org *org, long t, sim_buf *out)
{
	sim_buf_clear(out);
	if (t == 3)
		return SIM_NULL;
	if (t == 2 || t == 7)
		return SIM_VALUE;
	sim_buf_addf(out, "https://app.example.com/todo/%lld", (long long)sim_org_todo_id(org, t));
	return SIM_VALUE;
}

void sim_org_meas_name(const sim_org *org, long k, sim_buf *out)
{
	(void)org;
	sim_buf_clear(out);
	switch (k) {
	case 0: sim_buf_adds(out, "Revenue € (weekly)"); break;
	case 1: sim_buf_adds(out, "NPS 👍 \"net\""); break;
	case 2: sim_buf_adds(out, "Tickets\tclosed \\N"); break;
	default: sim_buf_addf(out, "Measurable %ld", k);
	}
}

static void week_of(const sim_org *org, long s, int *year, int *wn)
{
	int w = 10 + org->scores[s].week;

	*year = 2024 + (w - 1) / 52;
	*wn = (w - 1) % 52 + 1;
}

void sim_org_score_week(const sim_org *org, long s, sim_buf *out)
{
	int year, wn;

	week_of(org, s, &year, &wn);
	sim_buf_clear(out);
	sim_buf_addf(out, "%04d-W%02d", year, wn);
}

int sim_org_score_week_id(const sim_org *org, long s)
{
	return 2830 + org->scores[s].week;
}

/* ---- dates ---- */

void sim_org_civil(int64_t secs, int *year, int *mon, int *day, int *hour, int *min, int *sec)
{
	/* days-from-civil inverse (proleptic Gregorian) */
	int64_t days = secs / DAY;
	int64_t rem = secs % DAY;
	int64_t z, era, doe, yoe, y, doy, mp;

	if (rem < 0) {
		rem += DAY;
		days--;
	}
	z = days + 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	y = yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*day = (int)(doy - (153 * mp + 2) / 5 + 1);
	*mon = (int)(mp < 10 ? mp + 3 : mp - 9);
	*year = (int)(y + (*mon <= 2));
	*hour = (int)(rem / 3600);
	*min = (int)(rem % 3600 / 60);
	*sec = (int)(rem % 60);
}

static sim_date mk(sim_date_kind kind, int64_t secs)
{
	sim_date d = { kind, 0, 0, secs };

	return d;
}

static sim_date mkf(sim_date_kind kind, int64_t secs, int digits, uint32_t frac)
{
	sim_date d = { kind, digits, frac, secs };

	return d;
}

sim_date sim_org_meeting_created(const sim_org *org, long m)
{
	int64_t secs = BASE_TIME + 14 * DAY + m * DAY +
		       (int64_t)(sim_rng_hash(org->params.seed, (uint64_t)m, 4) % 3600);

	switch (m) {
	case 0: return mkf(SIM_DATE_Z, secs, 3, 123);
	case 1: return mk(SIM_DATE_NOZ, secs);
	case 2: return mk(SIM_DATE_EMPTY, 0);
	default: return mk(SIM_DATE_Z, secs);
	}
}

sim_date sim_org_meeting_start(const sim_org *org, long m)
{
	int64_t secs = BASE_TIME + 30 * DAY + m * 3600;

	(void)org;
	if (m == 1)
		return mk(SIM_DATE_ABSENT, 0);
	if (m == 2 || (m > 2 && m % 3 == 0))
		return mk(SIM_DATE_NULL, 0);
	return mk(SIM_DATE_Z, secs);
}

sim_val sim_org_meeting_org_id(const sim_org *org, long m, int64_t *id)
{
	(void)org;
	*id = SIM_ORG_ID;
	if (m == 1)
		return SIM_ABSENT;
	if (m == 2)
		return SIM_NULL;
	return SIM_VALUE;
}

static void fixed_todo_dates(long t, int64_t create, sim_todo_dates *d)
{
	switch (t) {
	case 0: break;
	case 1: d->due = mk(SIM_DATE_NULL, 0); d->create = mk(SIM_DATE_NOZ, create); break;
	case 2: d->due = mk(SIM_DATE_EMPTY, 0); d->create = mkf(SIM_DATE_Z, create, 3, 123); break;
	case 3: d->due = mk(SIM_DATE_NULL, 0); d->create = mk(SIM_DATE_NOZ, create); break;
	case 4:
		d->due = mk(SIM_DATE_DAY, 1735603200LL); /* 2024-12-31 */
		d->create = mkf(SIM_DATE_NOZ, create, 3, 123);
		break;
	case 5:
		d->complete = mkf(SIM_DATE_Z, create + DAY, 7, 1234567);
		d->close = mkf(SIM_DATE_NOZ, create + DAY + 60, 7, 7654321);
		break;
	case 6: d->create = mkf(SIM_DATE_Z, create, 7, 1000001); d->close = mk(SIM_DATE_ABSENT, 0); break;
	default: d->due = mk(SIM_DATE_EMPTY, 0); break;
	}
}

void sim_org_todo_dates(const sim_org *org, long t, sim_todo_dates *d)
{
	const sim_todo *todo = &org->todos[t];
	uint64_t h = sim_rng_hash(org->params.seed, (uint64_t)t, 5);
	int64_t create = BASE_TIME + 60 * DAY + (int64_t)(h % (90 * DAY));

	d->create = mk(SIM_DATE_Z, create);
	d->due = mk(SIM_DATE_Z, (create / DAY + 7 + (int64_t)(h >> 40) % 20) * DAY + 17 * 3600);
	d->complete = mk(SIM_DATE_NULL, 0);
	d->close = mk(SIM_DATE_NULL, 0);
	if (todo->closed == 1) {
		d->complete = mk(SIM_DATE_Z, create + 2 * DAY);
		d->close = mk(t % 2 ? SIM_DATE_NOZ : SIM_DATE_Z, create + 2 * DAY + 3600);
	} else if (todo->closed > 1) {
		int64_t when = BASE_TIME + 200 * DAY + (int64_t)todo->closed * DAY;

		d->complete = mk(SIM_DATE_Z, when);
		d->close = mk(SIM_DATE_Z, when + 1800);
	}
	if (t < SIM_FIXED_TODOS && !todo->milestone) {
		fixed_todo_dates(t, create, d);
		return;
	}
	if (t % 5 == 1)
		d->create.kind = SIM_DATE_NOZ;
	else if (t % 5 == 2)
		d->create = mkf(SIM_DATE_Z, create, 3, (uint32_t)(h % 99) * 10 + 1);
	if (t % 7 == 3)
		d->due = mk(SIM_DATE_NULL, 0);
	else if (t % 9 == 4)
		d->due.kind = SIM_DATE_DAY;
}

/* ---- measurables and scores ---- */

sim_val sim_org_meas_target(const sim_org *org, long k, double *v)
{
	(void)org;
	*v = (double)(k % 9) * 10.0 + 2.5;
	return k == 0 ? SIM_NULL : SIM_VALUE;
}

const char *sim_org_meas_direction(const sim_org *org, long k)
{
	(void)org;
	return directions[k % 6];
}

const char *sim_org_meas_unit(const sim_org *org, long k)
{
	(void)org;
	return units[k % 5];
}

sim_val sim_org_score_target(const sim_org *org, long s, double *v)
{
	if (s == 1) {
		*v = 0;
		return SIM_NULL;
	}
	return sim_org_meas_target(org, org->scores[s].meas, v);
}

sim_val sim_org_score_value(const sim_org *org, long s, double *v)
{
	uint64_t h = sim_rng_hash(org->params.seed, (uint64_t)s, 6 + ((uint64_t)org->scores[s].edit << 8));

	*v = (double)(h % 4000) / 4.0;
	if (s == 0 || (s >= SIM_FIXED_SCORES && (h >> 32) % 11 == 0))
		return SIM_NULL;
	return SIM_VALUE;
}

sim_date sim_org_score_entered(const sim_org *org, long s)
{
	double v;
	int64_t secs = BASE_TIME + (int64_t)(10 * 7 + org->scores[s].week * 7 + 2) * DAY +
		       (int64_t)(sim_rng_hash(org->params.seed, (uint64_t)s, 7) % 7200);

	if (sim_org_score_value(org, s, &v) == SIM_NULL)
		return mk(SIM_DATE_NULL, 0);
	switch (s) {
	case 2: return mk(SIM_DATE_EMPTY, 0);
	case 3: return mkf(SIM_DATE_Z, secs, 7, 1234567);
	case 4: return mk(SIM_DATE_NOZ, secs);
	default: return mk(SIM_DATE_Z, secs);
	}
}

/* ---- goals, issues, headlines ---- */

int64_t sim_org_goal_id(long g)
{
	return SIM_GOAL_BASE + g;
}

int64_t sim_org_issue_id(long i)
{
	return SIM_ISSUE_BASE + i;
}

int64_t sim_org_headline_id(long h)
{
	return SIM_HEADLINE_BASE + h;
}

static void long_words(sim_buf *out, const char *head, size_t len)
{
	static const char unit[] = "alpha beta — é 🚀 数据 ";

	sim_buf_adds(out, head);
	while (out->len < len && sim_buf_ok(out))
		sim_buf_adds(out, unit);
}

void sim_org_goal_name(const sim_org *org, long g, sim_buf *out)
{
	static const char nul_name[] = "Launch\0 EU";
	uint64_t h = sim_rng_hash(org->params.seed, (uint64_t)g, 20);

	sim_buf_clear(out);
	switch (g) {
	case 0: sim_buf_add(out, nul_name, sizeof nul_name - 1); break;
	case 1: long_words(out, "Long goal: ", 6000); break;
	case 2: sim_buf_adds(out, "Goal \"quoted\"\tand\nnew line \\ \\N"); break;
	default: sim_buf_addf(out, "Goal %ld: %s %s", g, todo_verbs[h % 8], todo_objects[(h >> 8) % 8]);
	}
	add_suffix(out, org->goals[g].rename);
}

void sim_org_goal_dates(const sim_org *org, long g, sim_date *due, sim_date *create)
{
	uint64_t h = sim_rng_hash(org->params.seed, (uint64_t)g, 21);
	int64_t made = BASE_TIME + (int64_t)(h % (300 * DAY));

	*create = mk(SIM_DATE_Z, made);
	*due = mk(SIM_DATE_Z, (made / DAY + 30 + (int64_t)(h >> 40) % 60) * DAY + 12 * 3600);
	switch (g) {
	case 0: *create = mkf(SIM_DATE_Z, made, 3, 123); break;
	case 1: *due = mk(SIM_DATE_NULL, 0); break;
	case 2: *due = mk(SIM_DATE_EMPTY, 0); create->kind = SIM_DATE_NOZ; break;
	case 3: *due = mk(SIM_DATE_DAY, 1727654400LL); break; /* 2024-09-30 */
	default:
		if (g % 6 == 5)
			create->kind = SIM_DATE_NOZ;
	}
}

const char *sim_org_goal_completion(const sim_org *org, long g)
{
	uint64_t h = sim_rng_hash(org->params.seed, (uint64_t)g, 22);

	if (g == 2)
		return "";
	if (g == 4)
		return "OnTrack"; /* yet Complete: done wins */
	return completions[(h + org->goals[g].progress) % 4];
}

bool sim_org_goal_complete(const sim_org *org, long g)
{
	return g == 4 || strcmp(sim_org_goal_completion(org, g), "Complete") == 0;
}

sim_val sim_org_goal_archived_key(const sim_org *org, long g, bool *value)
{
	*value = org->goals[g].archived && g != 3; /* goal 3: archived, yet says false */
	return g == 0 ? SIM_ABSENT : SIM_VALUE;
}

void sim_org_issue_name(const sim_org *org, long i, sim_buf *out)
{
	static const char nul_name[] = "Churn\0 spike";
	uint64_t h = sim_rng_hash(org->params.seed, (uint64_t)i, 23);

	sim_buf_clear(out);
	switch (i) {
	case 0: sim_buf_add(out, nul_name, sizeof nul_name - 1); break;
	case 1: long_words(out, "Long issue: ", 35000); break;
	case 2: sim_buf_adds(out, "Nobody owns \"this\"\tone\n\\N"); break;
	default: sim_buf_addf(out, "Issue %ld: %s", i, issue_topics[h % 6]);
	}
	add_suffix(out, org->issues[i].rename);
}

sim_val sim_org_issue_details(const sim_org *org, long i, sim_buf *out)
{
	(void)org;
	sim_buf_clear(out);
	if (i == 5)
		return SIM_NULL;
	if (i != 4)
		sim_buf_addf(out, "https://app.example.com/issue/%lld", (long long)sim_org_issue_id(i));
	return SIM_VALUE;
}

static int64_t closed_when(uint16_t closed, int64_t made)
{
	if (closed == 1)
		return made + 3 * DAY + 600;
	return BASE_TIME + 200 * DAY + (int64_t)closed * DAY;
}

void sim_org_issue_dates(const sim_org *org, long i, sim_date *create, sim_date *close, sim_date *complete)
{
	const sim_item *it = &org->issues[i];
	uint64_t h = sim_rng_hash(org->params.seed, (uint64_t)i, 24);
	int64_t made = BASE_TIME + 30 * DAY + (int64_t)(h % (120 * DAY));

	*create = mk(i == 1 || i % 7 == 6 ? SIM_DATE_NOZ : SIM_DATE_Z, made);
	*close = mk(SIM_DATE_NULL, 0);
	*complete = mk(SIM_DATE_ABSENT, 0);
	if (it->closed) {
		int64_t when = closed_when(it->closed, made);

		*close = mk(SIM_DATE_Z, when);
		*complete = i == 3 ? mkf(SIM_DATE_Z, when, 7, 1234567) : mk(SIM_DATE_Z, when);
		if (i == 5)
			*complete = mk(SIM_DATE_ABSENT, 0);
	}
	if (i == 4)
		*create = mk(SIM_DATE_EMPTY, 0);
}

void sim_org_headline_name(const sim_org *org, long hl, sim_buf *out)
{
	static const char nul_name[] = "Won\0 the ACME deal";
	uint64_t h = sim_rng_hash(org->params.seed, (uint64_t)hl, 25);

	sim_buf_clear(out);
	switch (hl) {
	case 0: sim_buf_add(out, nul_name, sizeof nul_name - 1); break;
	case 1: long_words(out, "Long headline: ", 5000); break;
	case 2: sim_buf_adds(out, "Customer said \"wow\"\t\\N"); break;
	default: sim_buf_addf(out, "Headline %ld: %s", hl, todo_objects[h % 8]);
	}
	add_suffix(out, org->headlines[hl].rename);
}

sim_val sim_org_headline_details(const sim_org *org, long hl, sim_buf *out)
{
	(void)org;
	sim_buf_clear(out);
	if (hl == 2)
		return SIM_NULL;
	sim_buf_addf(out, "https://app.example.com/headline/%lld", (long long)sim_org_headline_id(hl));
	return SIM_VALUE;
}

void sim_org_headline_dates(const sim_org *org, long hl, sim_date *create, sim_date *close)
{
	const sim_item *it = &org->headlines[hl];
	uint64_t h = sim_rng_hash(org->params.seed, (uint64_t)hl, 26);
	int64_t made = BASE_TIME + 40 * DAY + (int64_t)(h % (100 * DAY));

	*create = mk(hl % 4 == 3 ? SIM_DATE_NOZ : SIM_DATE_Z, made);
	*close = it->closed ? mk(SIM_DATE_Z, closed_when(it->closed, made)) : mk(SIM_DATE_NULL, 0);
	if (hl == 2)
		*close = mk(SIM_DATE_EMPTY, 0);
}

bool sim_org_headline_has_archived(const sim_org *org, long hl)
{
	(void)org;
	return hl != 1;
}

/* ---- indexes ---- */

typedef int (*key_fn)(const sim_org *org, long row, int32_t keys[2]);

static int key_attend_meeting(const sim_org *org, long row, int32_t keys[2])
{
	keys[0] = org->attends[row].meeting;
	return org->attends[row].alive;
}

static int key_attend_user(const sim_org *org, long row, int32_t keys[2])
{
	keys[0] = org->attends[row].user;
	return org->attends[row].alive;
}

static int key_todo_meeting(const sim_org *org, long row, int32_t keys[2])
{
	keys[0] = org->todos[row].meeting;
	return org->todos[row].alive && keys[0] >= 0;
}

static int key_todo_user(const sim_org *org, long row, int32_t keys[2])
{
	const sim_todo *t = &org->todos[row];

	keys[0] = t->owner;
	return t->alive && !t->milestone && t->closed == 0;
}

static int key_meas_meeting(const sim_org *org, long row, int32_t keys[2])
{
	const sim_meas *k = &org->meas[row];

	if (!k->alive)
		return 0;
	keys[0] = k->meeting1;
	keys[1] = k->meeting2;
	return k->meeting2 >= 0 ? 2 : 1;
}

static int key_score_meas(const sim_org *org, long row, int32_t keys[2])
{
	keys[0] = org->scores[row].meas;
	return org->scores[row].alive;
}

static int key_score_user(const sim_org *org, long row, int32_t keys[2])
{
	keys[0] = org->scores[row].user;
	return org->scores[row].alive;
}

static int key_goal_user(const sim_org *org, long row, int32_t keys[2])
{
	keys[0] = org->goals[row].owner;
	return org->goals[row].alive;
}

static int key_issue_meeting(const sim_org *org, long row, int32_t keys[2])
{
	keys[0] = org->issues[row].meeting;
	return org->issues[row].alive;
}

static int key_issue_user(const sim_org *org, long row, int32_t keys[2])
{
	const sim_item *it = &org->issues[row];

	keys[0] = it->owner;
	return it->alive && it->owner >= 0 && it->closed == 0;
}

static int key_headline_meeting(const sim_org *org, long row, int32_t keys[2])
{
	keys[0] = org->headlines[row].meeting;
	return org->headlines[row].alive;
}

static int key_headline_user(const sim_org *org, long row, int32_t keys[2])
{
	keys[0] = org->headlines[row].owner;
	return org->headlines[row].alive && org->headlines[row].owner >= 0;
}

static void index_free(sim_index *ix)
{
	free(ix->start);
	free(ix->items);
	ix->start = NULL;
	ix->items = NULL;
	ix->groups = 0;
}

static int index_build(const sim_org *org, sim_index *ix, long groups, long rows, key_fn fn)
{
	int32_t *start = calloc((size_t)groups + 2, sizeof *start);
	int32_t *items = NULL;
	int32_t keys[2];
	long row, total = 0;
	int n, i;

	if (start == NULL)
		goto fail;
	for (row = 0; row < rows; row++) {
		n = fn(org, row, keys);
		for (i = 0; i < n; i++)
			start[keys[i] + 2]++;
	}
	for (row = 0; row < groups; row++) {
		start[row + 2] += start[row + 1];
		total = start[row + 2];
	}
	items = malloc(((size_t)total + 1) * sizeof *items);
	if (items == NULL)
		goto fail;
	for (row = 0; row < rows; row++) {
		n = fn(org, row, keys);
		for (i = 0; i < n; i++)
			items[start[keys[i] + 1]++] = (int32_t)row;
	}
	index_free(ix);
	ix->start = start;
	ix->items = items;
	ix->groups = groups;
	return 0;
fail:
	free(start);
	free(items);
	return -1;
}

static int rebuild(sim_org *org)
{
	if (index_build(org, &org->meeting_attendees, org->n_meetings, org->n_attends, key_attend_meeting) ||
	    index_build(org, &org->user_meetings, org->n_users, org->n_attends, key_attend_user) ||
	    index_build(org, &org->meeting_todos, org->n_meetings, org->n_todos, key_todo_meeting) ||
	    index_build(org, &org->user_todos, org->n_users, org->n_todos, key_todo_user) ||
	    index_build(org, &org->meeting_meas, org->n_meetings, org->n_meas, key_meas_meeting) ||
	    index_build(org, &org->meas_scores, org->n_meas, org->n_scores, key_score_meas) ||
	    index_build(org, &org->user_scores, org->n_users, org->n_scores, key_score_user) ||
	    index_build(org, &org->user_goals, org->n_users, org->n_goals, key_goal_user) ||
	    index_build(org, &org->meeting_issues, org->n_meetings, org->n_issues, key_issue_meeting) ||
	    index_build(org, &org->user_issues, org->n_users, org->n_issues, key_issue_user) ||
	    index_build(org, &org->meeting_headlines, org->n_meetings, org->n_headlines, key_headline_meeting) ||
	    index_build(org, &org->user_headlines, org->n_users, org->n_headlines, key_headline_user))
		return -1;
	return 0;
}

/* ---- growth ---- */

static int grow(void **arr, long *cap, long need, size_t size)
{
	long c = *cap ? *cap : 16;
	void *p;

	if (need <= *cap)
		return 0;
	while (c < need)
		c *= 2;
	p = realloc(*arr, (size_t)c * size);
	if (p == NULL)
		return -1;
	*arr = p;
	*cap = c;
	return 0;
}

static int reserve_rows(sim_org *org, long users, long attends, long todos, long scores)
{
	if (grow((void **)&org->users, &org->cap_users, org->n_users + users, sizeof *org->users) ||
	    grow((void **)&org->attends, &org->cap_attends, org->n_attends + attends, sizeof *org->attends) ||
	    grow((void **)&org->todos, &org->cap_todos, org->n_todos + todos, sizeof *org->todos) ||
	    grow((void **)&org->scores, &org->cap_scores, org->n_scores + scores, sizeof *org->scores))
		return -1;
	return 0;
}

static long add_user(sim_org *org)
{
	sim_user *u = &org->users[org->n_users];

	u->rename = 0;
	u->alive = true;
	return org->n_users++;
}

static void add_attend(sim_org *org, long m, long u)
{
	sim_attend *a = &org->attends[org->n_attends++];

	a->meeting = (int32_t)m;
	a->user = (int32_t)u;
	a->alive = true;
}

static long add_todo(sim_org *org, long owner, long meeting, bool milestone, uint16_t closed)
{
	sim_todo *t = &org->todos[org->n_todos];

	t->owner = (int32_t)owner;
	t->meeting = (int32_t)meeting;
	t->rename = 0;
	t->closed = closed;
	t->milestone = milestone;
	t->alive = true;
	return org->n_todos++;
}

static void add_score(sim_org *org, long k, long week)
{
	sim_score *s = &org->scores[org->n_scores++];

	s->meas = (int32_t)k;
	s->user = org->meas[k].owner;
	s->week = (int32_t)week;
	s->edit = 0;
	s->alive = true;
}

/* ---- generation ---- */

void sim_org_default_params(sim_org_params *p)
{
	p->seed = 1;
	p->users = 40;
	p->meetings = 8;
	p->todos_per_meeting = 12;
	p->personal_todos = 2;
	p->measurables_per_meeting = 3;
	p->weeks = 6;
	p->goals_per_user = 2;
	p->issues_per_meeting = 6;
	p->headlines_per_meeting = 3;
}

static int reserve_items(sim_org *org, long goals, long issues, long headlines)
{
	if (grow((void **)&org->goals, &org->cap_goals, org->n_goals + goals, sizeof *org->goals) ||
	    grow((void **)&org->issues, &org->cap_issues, org->n_issues + issues, sizeof *org->issues) ||
	    grow((void **)&org->headlines, &org->cap_headlines, org->n_headlines + headlines, sizeof *org->headlines))
		return -1;
	return 0;
}

/* A goal of user u, from u's first meeting (every user attends u % M);
 * a goal in five has no Origins, a goal in seven two. */
static long add_goal(sim_org *org, long u, bool archived)
{
	long g = org->n_goals++;
	sim_goal *goal = &org->goals[g];
	long M = org->n_meetings, m = u % M;
	int i;

	goal->owner = (int32_t)u;
	for (i = 0; i < SIM_GOAL_ORIGINS; i++)
		goal->origins[i] = -1;
	if (g % 5 != 4)
		goal->origins[0] = (int32_t)m;
	if (g % 7 == 6 && M > 1) {
		long other = (m + 1) % M;
		goal->origins[0] = (int32_t)(m < other ? m : other);
		goal->origins[1] = (int32_t)(m < other ? other : m);
	}
	goal->rename = 0;
	goal->progress = 0;
	goal->archived = archived;
	goal->alive = true;
	return g;
}

static long add_item(sim_item *items, long *n, long owner, long meeting, uint16_t closed, bool archived)
{
	sim_item *it = &items[*n];

	it->owner = (int32_t)owner;
	it->meeting = (int32_t)meeting;
	it->rename = 0;
	it->closed = closed;
	it->archived = archived;
	it->alive = true;
	return (*n)++;
}

static long random_attendee(const sim_org *org, long m, sim_rng *rng);

static void gen_goals(sim_org *org, sim_rng *rng)
{
	static const int fixed_owner[SIM_FIXED_GOALS] = { 0, 1, 2, 3, 0 };
	long u, i, g;

	for (i = 0; i < SIM_FIXED_GOALS; i++) {
		g = add_goal(org, fixed_owner[i] % org->n_users, i == 3 || i == 4);
		if (i == 0) { /* several Origins */
			for (long m = 0; m < SIM_GOAL_ORIGINS; m++)
				org->goals[g].origins[m] = m < org->n_meetings ? (int32_t)m : -1;
		} else if (i == 1) {
			org->goals[g].origins[0] = -1;
		}
	}
	for (u = 0; u < org->n_users; u++)
		for (i = 0; i < org->params.goals_per_user; i++)
			add_goal(org, u, sim_rng_below(rng, 8) == 0);
}

static void gen_items(sim_org *org, sim_rng *rng)
{
	long m, i, n;

	for (i = 0; i < SIM_FIXED_ISSUES; i++)
		add_item(org->issues, &org->n_issues, i == 2 ? -1 : (long)(i % 5) % org->n_users, 0,
			 (i == 3 || i == 5) ? 1 : 0, i == 6);
	for (i = 0; i < SIM_FIXED_HEADLINES; i++)
		add_item(org->headlines, &org->n_headlines, (long)(i % 5) % org->n_users, 0, i == 3 ? 1 : 0, i == 3);
	for (m = 0; m < org->n_meetings; m++) {
		n = org->params.issues_per_meeting - (m == 0 ? SIM_FIXED_ISSUES : 0);
		for (i = 0; i < n; i++) {
			long owner = random_attendee(org, m, rng);

			add_item(org->issues, &org->n_issues, sim_rng_below(rng, 9) == 0 ? -1 : owner, m,
				 sim_rng_below(rng, 4) == 0 ? 1 : 0, sim_rng_below(rng, 12) == 0);
		}
		n = org->params.headlines_per_meeting - (m == 0 ? SIM_FIXED_HEADLINES : 0);
		for (i = 0; i < n; i++)
			add_item(org->headlines, &org->n_headlines, random_attendee(org, m, rng), m,
				 sim_rng_below(rng, 3) == 0 ? 1 : 0, sim_rng_below(rng, 10) == 0);
	}
}

static bool attends_already(const sim_org *org, long from, long m)
{
	long i;

	for (i = from; i < org->n_attends; i++)
		if (org->attends[i].meeting == m)
			return true;
	return false;
}

static int gen_attendance(sim_org *org, sim_rng *rng)
{
	long M = org->n_meetings, U = org->n_users, u, m;
	long *count = calloc((size_t)M, sizeof *count);
	long cand[4];
	int n, i;

	if (count == NULL)
		return -1;
	for (u = 0; u < U; u++) {
		long from = org->n_attends;

		n = 0;
		cand[n++] = u % M;
		if (u < SIM_FIXED_USERS)
			cand[n++] = 0;
		if (u < 2 && M > 1)
			cand[n++] = 1;
		if (sim_rng_below(rng, 2))
			cand[n++] = (u * 7 + 3) % M;
		for (i = 0; i < n; i++) {
			if (attends_already(org, from, cand[i]))
				continue;
			add_attend(org, cand[i], u);
			count[cand[i]]++;
		}
	}
	for (m = 0; m < M; m++)
		if (count[m] == 0)
			add_attend(org, m, m % U);
	free(count);
	return 0;
}

static long random_attendee(const sim_org *org, long m, sim_rng *rng)
{
	const sim_index *ix = &org->meeting_attendees;
	long n = ix->start[m + 1] - ix->start[m];

	return org->attends[ix->items[ix->start[m] + (long)sim_rng_below(rng, (uint64_t)n)]].user;
}

static void gen_todos(sim_org *org, sim_rng *rng)
{
	static const int fixed_owner[SIM_FIXED_TODOS] = { 0, 1, 4, 2, 3, 0, 3, 1 };
	long m, u, i;

	for (i = 0; i < SIM_FIXED_TODOS; i++)
		add_todo(org, fixed_owner[i] % org->n_users, 0, false, (i == 5 || i == 7) ? 1 : 0);
	for (m = 0; m < org->n_meetings; m++) {
		long n = org->params.todos_per_meeting - (m == 0 ? SIM_FIXED_TODOS : 0);

		add_todo(org, random_attendee(org, m, rng), m, true, 0);
		for (i = 0; i < n; i++) {
			long owner = random_attendee(org, m, rng);

			add_todo(org, owner, m, false, sim_rng_below(rng, 5) == 0 ? 1 : 0);
		}
	}
	for (u = 0; u < org->n_users; u++)
		for (i = 0; i < org->params.personal_todos; i++)
			add_todo(org, u, -1, false, 0);
}

static void gen_scorecards(sim_org *org, sim_rng *rng)
{
	long m, i, k;

	for (m = 0; m < org->n_meetings; m++) {
		for (i = 0; i < org->params.measurables_per_meeting; i++) {
			sim_meas *meas = &org->meas[org->n_meas];

			meas->owner = (int32_t)random_attendee(org, m, rng);
			meas->meeting1 = (int32_t)m;
			meas->meeting2 = (org->n_meas % 4 == 0 && org->n_meetings > 1) ? (int32_t)((m + 1) % org->n_meetings) : -1;
			meas->alive = true;
			org->n_meas++;
		}
	}
	for (k = 0; k < org->n_meas; k++)
		for (i = 0; i < org->params.weeks; i++)
			add_score(org, k, i);
}

static bool params_ok(const sim_org_params *p)
{
	return p->users >= 1 && p->meetings >= 1 && p->users <= 5000000 && p->meetings <= 1000000 &&
	       p->todos_per_meeting >= 0 && p->todos_per_meeting <= 10000 && p->personal_todos >= 0 &&
	       p->personal_todos <= 1000 && p->measurables_per_meeting >= 1 &&
	       p->measurables_per_meeting <= 1000 && p->weeks >= 1 && p->weeks <= 520 && p->goals_per_user >= 0 &&
	       p->goals_per_user <= 1000 && p->issues_per_meeting >= 0 && p->issues_per_meeting <= 10000 &&
	       p->headlines_per_meeting >= 0 && p->headlines_per_meeting <= 10000;
}

sim_org *sim_org_new(const sim_org_params *p)
{
	sim_org *org;
	sim_rng rng;
	long todos, i;

	if (!params_ok(p))
		return NULL;
	org = calloc(1, sizeof *org);
	if (org == NULL)
		return NULL;
	org->params = *p;
	rng.state = sim_rng_hash(p->seed, 0x6f7267, 0);
	org->n_meetings = p->meetings;
	todos = SIM_FIXED_TODOS + p->meetings * (p->todos_per_meeting + 1) + p->users * p->personal_todos;
	org->meas = calloc((size_t)(p->meetings * p->measurables_per_meeting), sizeof *org->meas);
	if (org->meas == NULL || reserve_rows(org, p->users, p->users * 4 + p->meetings, todos,
					       p->meetings * p->measurables_per_meeting * p->weeks))
		goto fail;
	for (i = 0; i < p->users; i++)
		add_user(org);
	if (gen_attendance(org, &rng) ||
	    index_build(org, &org->meeting_attendees, org->n_meetings, org->n_attends, key_attend_meeting))
		goto fail;
	gen_todos(org, &rng);
	gen_scorecards(org, &rng);
	if (reserve_items(org, SIM_FIXED_GOALS + p->users * p->goals_per_user,
			  SIM_FIXED_ISSUES + p->meetings * p->issues_per_meeting,
			  SIM_FIXED_HEADLINES + p->meetings * p->headlines_per_meeting))
		goto fail;
	gen_goals(org, &rng);
	gen_items(org, &rng);
	if (rebuild(org))
		goto fail;
	return org;
fail:
	sim_org_free(org);
	return NULL;
}

void sim_org_free(sim_org *org)
{
	if (org == NULL)
		return;
	index_free(&org->meeting_attendees);
	index_free(&org->user_meetings);
	index_free(&org->meeting_todos);
	index_free(&org->user_todos);
	index_free(&org->meeting_meas);
	index_free(&org->meas_scores);
	index_free(&org->user_scores);
	index_free(&org->user_goals);
	index_free(&org->meeting_issues);
	index_free(&org->user_issues);
	index_free(&org->meeting_headlines);
	index_free(&org->user_headlines);
	free(org->goals);
	free(org->issues);
	free(org->headlines);
	free(org->users);
	free(org->attends);
	free(org->todos);
	free(org->meas);
	free(org->scores);
	free(org);
}

/* ---- mutation ---- */

static long atleast1(long n)
{
	return n > 0 ? n : 1;
}

/* Each change below picks random rows until it has made n changes or tried
 * 50 * n rows, so even a tiny organisation sees every kind of change. */
#define PICKS(n) for (long done_ = 0, try_ = 0; done_ < (n) && try_ < 50 * (n); try_++)

static void mutate_edits(sim_org *org, sim_rng *rng, long g)
{
	PICKS(atleast1(org->n_users / 20)) {
		sim_user *u = &org->users[sim_rng_below(rng, (uint64_t)org->n_users)];

		if (u->alive) {
			u->rename++;
			done_++;
		}
	}
	PICKS(atleast1(org->n_todos / 20)) {
		sim_todo *t = &org->todos[sim_rng_below(rng, (uint64_t)org->n_todos)];

		if (t->alive) {
			t->rename++;
			done_++;
		}
	}
	PICKS(atleast1(org->n_todos / 20)) {
		long row = (long)sim_rng_below(rng, (uint64_t)org->n_todos);
		sim_todo *t = &org->todos[row];

		if (row >= SIM_FIXED_TODOS && t->alive && t->meeting >= 0 && !t->milestone && t->closed == 0) {
			t->closed = (uint16_t)(g + 1);
			done_++;
		}
	}
	PICKS(atleast1(org->n_scores / 20)) {
		sim_score *s = &org->scores[sim_rng_below(rng, (uint64_t)org->n_scores)];

		if (s->alive && s->edit != g) {
			s->edit = (uint16_t)g;
			done_++;
		}
	}
}

/* A user may go when it owns no measurable and every meeting it attends
 * keeps another attendee. */
static bool removable(const sim_org *org, long u, const bool *owner, const long *count)
{
	const sim_index *ix = &org->user_meetings;
	long i;

	if (u < SIM_FIXED_USERS || !org->users[u].alive || owner[u])
		return false;
	for (i = ix->start[u]; i < ix->start[u + 1]; i++)
		if (count[org->attends[ix->items[i]].meeting] < 2)
			return false;
	return true;
}

static void remove_user(sim_org *org, long u, long *count)
{
	const sim_index *ix = &org->user_meetings;
	long i;

	org->users[u].alive = false;
	for (i = ix->start[u]; i < ix->start[u + 1]; i++) {
		sim_attend *a = &org->attends[ix->items[i]];

		a->alive = false;
		count[a->meeting]--;
	}
}

static int mutate_removals(sim_org *org, sim_rng *rng)
{
	bool *owner = calloc((size_t)org->n_users, sizeof *owner);
	long *count = calloc((size_t)org->n_meetings, sizeof *count);
	long i, m;
	int rc = -1;

	if (owner == NULL || count == NULL)
		goto done;
	for (i = 0; i < org->n_meas; i++)
		owner[org->meas[i].owner] = true;
	for (m = 0; m < org->n_meetings; m++)
		count[m] = org->meeting_attendees.start[m + 1] - org->meeting_attendees.start[m];
	PICKS(atleast1(org->n_users / 30)) {
		long u = (long)sim_rng_below(rng, (uint64_t)org->n_users);

		if (removable(org, u, owner, count)) {
			remove_user(org, u, count);
			done_++;
		}
	}
	for (i = 0; i < org->n_todos; i++)
		if (!org->users[org->todos[i].owner].alive)
			org->todos[i].alive = false;
	PICKS(atleast1(org->n_todos / 50)) {
		long t = (long)sim_rng_below(rng, (uint64_t)org->n_todos);

		if (t >= SIM_FIXED_TODOS && !org->todos[t].milestone && org->todos[t].alive) {
			org->todos[t].alive = false;
			done_++;
		}
	}
	PICKS(atleast1(org->n_scores / 50)) {
		long s = (long)sim_rng_below(rng, (uint64_t)org->n_scores);

		if (s >= SIM_FIXED_SCORES && org->scores[s].alive) {
			org->scores[s].alive = false;
			done_++;
		}
	}
	rc = 0;
done:
	free(owner);
	free(count);
	return rc;
}

static bool user_attends(const sim_org *org, long u, long m)
{
	const sim_index *ix = &org->user_meetings;
	long i;

	for (i = ix->start[u]; i < ix->start[u + 1]; i++)
		if (org->attends[ix->items[i]].meeting == m)
			return true;
	return false;
}

static void mutate_additions(sim_org *org, sim_rng *rng, long g, long new_users, long new_attends, long new_scores)
{
	long old_users = org->n_users, i;
	long off = (long)sim_rng_below(rng, (uint64_t)org->n_meas);

	for (i = 0; i < new_users; i++) {
		long u = add_user(org);
		long m = (long)sim_rng_below(rng, (uint64_t)org->n_meetings);

		add_attend(org, m, u);
		add_todo(org, u, -1, false, 0);
		add_todo(org, u, m, false, 0);
	}
	for (i = 0; i < new_attends; i++) {
		long u = (long)sim_rng_below(rng, (uint64_t)old_users);
		long m = (long)sim_rng_below(rng, (uint64_t)org->n_meetings);

		if (org->users[u].alive && !user_attends(org, u, m))
			add_attend(org, m, u);
	}
	for (i = 0; i < new_scores; i++) {
		long k = (off + i) % org->n_meas;

		if (org->meas[k].alive)
			add_score(org, k, org->params.weeks + g - 1);
	}
}

/* Goals, issues and headlines: owners that went take theirs along; then
 * renames, progress, resolutions, an archived goal, removals and additions.
 * Its own generator, so the older kinds of change stay as they were. */
static void mutate_items(sim_org *org, long g, long adds)
{
	sim_rng rng;
	long i;

	rng.state = sim_rng_hash(org->params.seed, 0x5354, (uint64_t)g);
	for (i = 0; i < org->n_goals; i++)
		if (!org->users[org->goals[i].owner].alive)
			org->goals[i].alive = false;
	for (i = 0; i < org->n_issues; i++)
		if (org->issues[i].owner >= 0 && !org->users[org->issues[i].owner].alive)
			org->issues[i].alive = false;
	for (i = 0; i < org->n_headlines; i++)
		if (!org->users[org->headlines[i].owner].alive)
			org->headlines[i].alive = false;
	PICKS(atleast1(org->n_goals / 20)) {
		sim_goal *goal = &org->goals[sim_rng_below(&rng, (uint64_t)org->n_goals)];

		if (goal->alive) {
			goal->rename++;
			goal->progress++;
			done_++;
		}
	}
	PICKS(1) {
		long row = (long)sim_rng_below(&rng, (uint64_t)org->n_goals);

		if (row >= SIM_FIXED_GOALS && org->goals[row].alive && !org->goals[row].archived) {
			org->goals[row].archived = true;
			done_++;
		}
	}
	PICKS(atleast1(org->n_issues / 20)) {
		long row = (long)sim_rng_below(&rng, (uint64_t)org->n_issues);
		sim_item *it = &org->issues[row];

		if (it->alive) {
			it->rename++;
			if (row >= SIM_FIXED_ISSUES && it->closed == 0)
				it->closed = (uint16_t)(g + 1);
			done_++;
		}
	}
	PICKS(atleast1(org->n_headlines / 20)) {
		sim_item *it = &org->headlines[sim_rng_below(&rng, (uint64_t)org->n_headlines)];

		if (it->alive) {
			it->rename++;
			done_++;
		}
	}
	PICKS(atleast1(org->n_goals / 30)) {
		long row = (long)sim_rng_below(&rng, (uint64_t)org->n_goals);

		if (row >= SIM_FIXED_GOALS && org->goals[row].alive) {
			org->goals[row].alive = false;
			done_++;
		}
	}
	PICKS(atleast1(org->n_issues / 30)) {
		long row = (long)sim_rng_below(&rng, (uint64_t)org->n_issues);

		if (row >= SIM_FIXED_ISSUES && org->issues[row].alive) {
			org->issues[row].alive = false;
			done_++;
		}
	}
	PICKS(atleast1(org->n_headlines / 30)) {
		long row = (long)sim_rng_below(&rng, (uint64_t)org->n_headlines);

		if (row >= SIM_FIXED_HEADLINES && org->headlines[row].alive) {
			org->headlines[row].alive = false;
			done_++;
		}
	}
	for (i = 0; i < adds; i++) {
		long u = (long)sim_rng_below(&rng, (uint64_t)org->n_users);
		long m = (long)sim_rng_below(&rng, (uint64_t)org->n_meetings);

		if (!org->users[u].alive)
			u = 0;
		add_goal(org, u, false);
		add_item(org->issues, &org->n_issues, u, m, 0, false);
		add_item(org->headlines, &org->n_headlines, u, m, 0, false);
	}
}

long sim_org_mutate(sim_org *org)
{
	long g = org->generation + 1;
	long new_users = atleast1(org->params.users / 40);
	long new_attends = atleast1(org->n_users / 40);
	long new_scores = atleast1(org->n_meas / 10);
	sim_rng rng;

	if (new_scores > org->n_meas)
		new_scores = org->n_meas;
	if (g > 60000 || reserve_rows(org, new_users, new_users + new_attends, 2 * new_users, new_scores))
		return -1;
	rng.state = sim_rng_hash(org->params.seed, 0x4d55, (uint64_t)g);
	mutate_edits(org, &rng, g);
	if (mutate_removals(org, &rng))
		return -1;
	mutate_additions(org, &rng, g, new_users, new_attends, new_scores);
	if (reserve_items(org, new_users, new_users, new_users))
		return -1;
	mutate_items(org, g, new_users);
	org->generation = g;
	if (rebuild(org))
		return -1;
	return g;
}
