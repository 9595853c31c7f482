-- 001_init: the mirror tables (../shared/design/mirror-schema.md) and the
-- bookkeeping that makes runs resumable. Runs with search_path set to the
-- mirror schema, inside one transaction.

-- Mirror tables. Every one has raw, first_seen_at, updated_at, deleted_at.
CREATE TABLE users (
	id              bigint PRIMARY KEY,
	name            text NOT NULL,
	email           text,
	title           text,
	image_url       text,
	organization_id bigint,
	is_placeholder  boolean NOT NULL,
	raw             jsonb NOT NULL,
	first_seen_at   timestamptz NOT NULL DEFAULT now(),
	updated_at      timestamptz NOT NULL DEFAULT now(),
	deleted_at      timestamptz
);

CREATE TABLE meetings (
	id              bigint PRIMARY KEY,
	name            text,
	meeting_type    text,
	meeting_key     text,
	start_date_utc  timestamptz,
	created_at      timestamptz,
	organization_id bigint,
	raw             jsonb NOT NULL,
	first_seen_at   timestamptz NOT NULL DEFAULT now(),
	updated_at      timestamptz NOT NULL DEFAULT now(),
	deleted_at      timestamptz
);

CREATE TABLE meeting_attendees (
	meeting_id    bigint NOT NULL,
	user_id       bigint NOT NULL,
	raw           jsonb NOT NULL,
	first_seen_at timestamptz NOT NULL DEFAULT now(),
	updated_at    timestamptz NOT NULL DEFAULT now(),
	deleted_at    timestamptz,
	PRIMARY KEY (meeting_id, user_id)
);
CREATE INDEX meeting_attendees_user_idx ON meeting_attendees (user_id);

CREATE TABLE todos (
	id            bigint PRIMARY KEY,
	name          text NOT NULL,
	details_url   text,
	due_date      timestamptz,
	created_at    timestamptz,
	completed_at  timestamptz,
	closed_at     timestamptz,
	is_complete   boolean NOT NULL,
	meeting_id    bigint,
	meeting_name  text,
	owner_id      bigint,
	raw           jsonb NOT NULL,
	first_seen_at timestamptz NOT NULL DEFAULT now(),
	updated_at    timestamptz NOT NULL DEFAULT now(),
	deleted_at    timestamptz
);
CREATE INDEX todos_meeting_idx ON todos (meeting_id);
CREATE INDEX todos_owner_idx ON todos (owner_id);

CREATE TABLE measurables (
	id            bigint PRIMARY KEY,
	name          text,
	target        numeric,
	unit          text,
	direction     text,
	owner_id      bigint,
	raw           jsonb NOT NULL,
	first_seen_at timestamptz NOT NULL DEFAULT now(),
	updated_at    timestamptz NOT NULL DEFAULT now(),
	deleted_at    timestamptz
);

CREATE TABLE meeting_measurables (
	meeting_id    bigint NOT NULL,
	measurable_id bigint NOT NULL,
	raw           jsonb NOT NULL,
	first_seen_at timestamptz NOT NULL DEFAULT now(),
	updated_at    timestamptz NOT NULL DEFAULT now(),
	deleted_at    timestamptz,
	PRIMARY KEY (meeting_id, measurable_id)
);

CREATE TABLE scores (
	id                  bigint PRIMARY KEY,
	measurable_id       bigint,
	accountable_user_id bigint,
	measurable_name     text,
	target              numeric,
	value               numeric,
	week                text,
	week_id             integer,
	entered_at          timestamptz,
	raw                 jsonb NOT NULL,
	first_seen_at       timestamptz NOT NULL DEFAULT now(),
	updated_at          timestamptz NOT NULL DEFAULT now(),
	deleted_at          timestamptz
);
CREATE INDEX scores_measurable_idx ON scores (measurable_id, week_id);

-- One row per run. A run that was interrupted (running with no live
-- process, failed, cancelled) is resumed by the next sync.
CREATE TABLE sync_runs (
	id              bigserial PRIMARY KEY,
	started_at      timestamptz NOT NULL DEFAULT now(),
	finished_at     timestamptz,
	status          text NOT NULL DEFAULT 'running'
	                CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled', 'abandoned')),
	resumed         integer NOT NULL DEFAULT 0,   -- how many times it was resumed
	last_resumed_at timestamptz,
	units_known     bigint NOT NULL DEFAULT 0,
	units_done      bigint NOT NULL DEFAULT 0,
	deleted_rows    bigint NOT NULL DEFAULT 0,
	error           text,
	host            text,
	pid             integer,
	version         text
);

-- Per run and stream: counts, updated in the transaction of each batch.
-- (The bookkeeping tables carry no foreign keys: they are written per row
-- and per batch by bloomsync alone, and a trigger per row costs throughput.)
CREATE TABLE sync_run_streams (
	run_id       bigint NOT NULL,
	stream       text NOT NULL,
	requests     bigint NOT NULL DEFAULT 0,
	retries      bigint NOT NULL DEFAULT 0,
	inserted     bigint NOT NULL DEFAULT 0,
	updated      bigint NOT NULL DEFAULT 0,
	unchanged    bigint NOT NULL DEFAULT 0,
	skipped      bigint NOT NULL DEFAULT 0,
	rejected     bigint NOT NULL DEFAULT 0,
	deleted      bigint NOT NULL DEFAULT 0,
	nul_removed  bigint NOT NULL DEFAULT 0,
	PRIMARY KEY (run_id, stream)
);

-- The units of a run (one per GET). A list unit's children are inserted in
-- the transaction that marks the list done, so resume neither re-lists nor
-- refetches. state: 0 pending, 1 done, 2 vanished (404 on a detail).
CREATE TABLE sync_units (
	run_id    bigint NOT NULL,
	seq       bigserial,
	kind      text NOT NULL,
	ref       bigint NOT NULL,
	parent    bigint,
	state     smallint NOT NULL DEFAULT 0,
	PRIMARY KEY (run_id, seq),
	UNIQUE (run_id, kind, ref)
);
CREATE INDEX sync_units_pending_idx ON sync_units (run_id, seq) WHERE state = 0;

-- Keys of unchanged rows seen by a run (rows it inserted or updated carry
-- updated_at >= the run's start). Deletes after a complete run use both.
-- tbl is the table's index in bloomsync's table list. UNLOGGED: it is
-- written for every unchanged row of every run and needs no WAL; a crash of
-- the server empties it, which the run's marker row (tbl = -1, written when
-- the run starts) reveals: such a run then marks nothing deleted.
CREATE UNLOGGED TABLE sync_seen (
	run_id bigint NOT NULL,
	tbl    smallint NOT NULL,
	k1     bigint NOT NULL,
	k2     bigint NOT NULL DEFAULT 0,
	PRIMARY KEY (run_id, tbl, k1, k2)
);

-- Records that could not be stored: never dropped silently.
CREATE TABLE rejected_records (
	id          bigserial PRIMARY KEY,
	run_id      bigint,
	stream      text NOT NULL,
	record_id   text,
	reason      text NOT NULL,
	raw         text,
	rejected_at timestamptz NOT NULL DEFAULT now()
);
