-- 009: the current shape for schemas migrated by builds whose 001_init,
-- 004_sources or 007_source_counts had an older text.
--
-- Those three files were edited after their first commit, and a schema
-- records a migration by its name only: one migrated by such a build has
-- the version recorded and the shape that build's text made. Each step
-- below finds one such difference and makes it the current shape; on a
-- schema migrated by the current files every step is a no-op. (The older
-- key of sync_units must change before 005, so 004b_units_key does that.)
-- Since this migration, schema_migrations records each migration's
-- checksum, and bloomsync warns about an applied text that differs.

-- 001_init before 14951ec: foreign keys from the bookkeeping tables to
-- sync_runs (a trigger per row written; the current text has none).
-- sync_seen's went with sync_seen, dropped by 004, as did its text tbl
-- and its being logged before 8cee1a8.
ALTER TABLE sync_run_streams DROP CONSTRAINT IF EXISTS sync_run_streams_run_id_fkey;
ALTER TABLE sync_units DROP CONSTRAINT IF EXISTS sync_units_run_id_fkey;
ALTER TABLE rejected_records DROP CONSTRAINT IF EXISTS rejected_records_run_id_fkey;

-- 004_sources before 3ee3f5a: no sync_runs.sources_read. Added here, it
-- would come after 008's streams; streams is moved after it (a copy), so
-- the columns keep the order of a schema migrated by the current files.
-- The default (0 units read in full) is what 004 gave the runs before it.
DO $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'sync_runs'::regclass
	               AND attname = 'sources_read' AND NOT attisdropped) THEN
		ALTER TABLE sync_runs ADD COLUMN sources_read bigint NOT NULL DEFAULT 0;
		ALTER TABLE sync_runs RENAME COLUMN streams TO streams_before_009;
		ALTER TABLE sync_runs ADD COLUMN streams text;
		UPDATE sync_runs SET streams = streams_before_009 WHERE streams_before_009 IS NOT NULL;
		ALTER TABLE sync_runs DROP COLUMN streams_before_009;
	END IF;
END
$$;

-- 007_source_counts before d3b4093: rows_named integer[], the count of
-- table tbl at [tbl + 1], where the current text has "tbl:count" pairs for
-- the tables with rows ('' for none); NULL (counted from the yields) stays
-- NULL. A copy then a rename, since ALTER ... TYPE ... USING takes no
-- subquery; rows_named was the last column and stays so.
DO $$
BEGIN
	IF (SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'sync_sources'::regclass
	    AND attname = 'rows_named' AND NOT attisdropped) = 'integer[]' THEN
		ALTER TABLE sync_sources RENAME COLUMN rows_named TO rows_named_before_009;
		ALTER TABLE sync_sources ADD COLUMN rows_named text;
		UPDATE sync_sources SET rows_named = coalesce(
			(SELECT string_agg((i - array_lower(rows_named_before_009, 1)) || ':' || rows_named_before_009[i], ',' ORDER BY i)
			 FROM generate_subscripts(rows_named_before_009, 1) AS i
			 WHERE rows_named_before_009[i] > 0), '')
		WHERE rows_named_before_009 IS NOT NULL;
		ALTER TABLE sync_sources DROP COLUMN rows_named_before_009;
	END IF;
END
$$;
