-- 010: runs that skipped the marking of deletes.
--
-- A complete run whose yields were lost (a server crash emptied the
-- UNLOGGED sync_yields and sync_sources since it began) marks nothing
-- deleted. The next complete run must then look, even when it reads no body
-- in full: the rows the API dropped before the crash are still live. Such a
-- run is no baseline for "no source changed since deletes were last marked".
ALTER TABLE sync_runs ADD COLUMN deletes_skipped boolean NOT NULL DEFAULT false;
