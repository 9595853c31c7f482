-- 004: sources whose answer did not change are not read again.
--
-- A source is one GET of a run (a unit: kind + ref). sync_sources keeps a
-- digest of the body it answered when last read in full, and sync_yields the
-- mirror rows that body yielded: per table (tbl = the table's index in
-- bloomsync's table list) the keys, k1[i] (and k2[i] for two-column keys) --
-- arrays, so a source costs a row per table, not a row per row. A later run that gets a body with the same
-- digest skips it: its rows are in the mirror as they were, and its yields
-- still name them, so a complete run marks deleted exactly the mirror rows
-- that no source of the run yielded.
--
-- Both UNLOGGED: they are derived data, written for every changed source and
-- worth no WAL. A server crash empties them, which costs the next run a full
-- read of every source and nothing else, except for a run under way: the
-- yields of the sources it already read are gone. Its marker row (kind '',
-- ref = run id, written when the run starts) is gone with them, and such a
-- run then marks nothing deleted (the next complete run does).
CREATE UNLOGGED TABLE sync_sources (
	kind   text NOT NULL,
	ref    bigint NOT NULL,
	digest bigint NOT NULL,
	PRIMARY KEY (kind, ref)
);

CREATE UNLOGGED TABLE sync_yields (
	kind text NOT NULL,
	ref  bigint NOT NULL,
	tbl  smallint NOT NULL,
	k1   bigint[] NOT NULL,
	k2   bigint[],
	PRIMARY KEY (kind, ref, tbl)
);

-- sync_seen (a row per unchanged row per run) is what the yields replace.
DROP TABLE sync_seen;

-- Marking a unit done changes only its state: without an index on state
-- and with room left on each page, that update is HOT (no index entries,
-- no page split). Pending units are found by the primary key from the
-- run's cursor on.
DROP INDEX sync_units_pending_idx;
ALTER TABLE sync_units SET (fillfactor = 50);

-- Units a run read in full (not skipped as unchanged): when no run since the
-- last complete one read any, and the complete run at hand forgot no source,
-- no row can have stopped being named, and marking deletes is skipped.
ALTER TABLE sync_runs ADD COLUMN sources_read bigint NOT NULL DEFAULT 0;
