-- 004b: sync_units keyed by (run_id, seq) where 001_init gave it the
-- older key (run_id, kind, ref).
--
-- 001_init was edited after its first commit, and a schema records a
-- migration by its name only. Builds before 473ba26 created sync_units
-- with the primary key (run_id, kind, ref); the current text has the key
-- (run_id, seq) and a unique constraint sync_units_run_id_kind_ref_key on
-- (run_id, kind, ref), which 005 drops. On a schema with the older key 005
-- fails ("constraint ... does not exist") and no later migration can run,
-- so this one runs before 005 (hence its name: after 004_sources, before
-- 005_units_lookup) and gives sync_units the current key and constraint.
-- Anywhere else it changes nothing; a schema migrated up to 005 or later
-- already has the current key, and gets this applied after its last one.
-- The rest of what those edits changed is 009_reshape's.
--
-- The new key and constraint hold on any rows: seq is a bigserial (unique,
-- not null) and (run_id, kind, ref) was the key. sync_units holds the
-- units of the unfinished run at most, so building them is quick.
DO $$
DECLARE
	pkey name;
BEGIN
	SELECT c.conname INTO pkey
	FROM pg_constraint c
	WHERE c.conrelid = 'sync_units'::regclass AND c.contype = 'p'
	  AND (SELECT array_agg(a.attname::text ORDER BY k.n)
	       FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, n)
	       JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum)
	      = ARRAY['run_id', 'kind', 'ref'];
	IF pkey IS NOT NULL THEN
		EXECUTE format('ALTER TABLE sync_units DROP CONSTRAINT %I', pkey);
		ALTER TABLE sync_units ADD PRIMARY KEY (run_id, seq),
			ADD CONSTRAINT sync_units_run_id_kind_ref_key UNIQUE (run_id, kind, ref);
	END IF;
END
$$;
