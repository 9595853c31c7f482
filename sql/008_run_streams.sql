-- 008: a run remembers the streams every one of its sessions synced.
--
-- A session drops the child units of streams left out of sync.streams (and
-- skips those already queued). So a run resumed with a stream its earlier
-- sessions left out would never have that stream's units: completing it,
-- it would mark the stream's rows deleted though they exist upstream.
-- streams: the sync.streams names (comma-separated) on in every session so
-- far; a session asking for one not in it abandons the run and starts a new
-- one. NULL: a run recorded before this migration, taken to have synced all.
ALTER TABLE sync_runs ADD COLUMN IF NOT EXISTS streams text;
