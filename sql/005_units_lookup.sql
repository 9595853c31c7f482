-- 005: a run's units are looked up by ref first.
--
-- A batch records the units its bodies named (a users list names seven per
-- user, and a meeting is named by each attendee's list) and skips those the
-- run already has. Checked by NOT EXISTS against a unique index on
-- (run_id, ref, kind) rather than by ON CONFLICT against (run_id, kind, ref),
-- this costs half as much for a new unit and a quarter for a known one: the
-- speculative insertion of ON CONFLICT is gone, and the leading bigint tells
-- keys apart before any text comparison. One run at a time (the run lock),
-- so nothing can insert the same unit between the check and the insert; the
-- index still refuses a duplicate if anything ever did.
ALTER TABLE sync_units DROP CONSTRAINT sync_units_run_id_kind_ref_key;
CREATE UNIQUE INDEX sync_units_run_ref_kind ON sync_units (run_id, ref, kind);
