-- 007: a source's digest comes with the number of rows its body named.
--
-- A sync that finds a body unchanged counts its rows as unchanged, per
-- table. Those counts were summed from the source's yields with a join per
-- batch: 0.33-0.48 s of the 1.4-2.0 s PostgreSQL spent on a no-change sync
-- of the bench's large org. rows_named is read with the digest, which is
-- looked up anyway: "tbl:count" pairs, comma-separated, for the tables the
-- body had rows for (tbl as in sync_yields), '' for none; NULL: counted
-- from the yields. Text rather than integer[]: 42,000 digests COPY in the
-- time they take without counts, where an 11-element array took 35% more.
ALTER TABLE sync_sources ADD COLUMN IF NOT EXISTS rows_named text;

-- The sources recorded so far get their counts from their yields.
WITH n AS (
	SELECT kind, ref, string_agg(tbl || ':' || n, ',' ORDER BY tbl) AS rows_named
	FROM (SELECT kind, ref, tbl, sum(cardinality(k1)) AS n FROM sync_yields GROUP BY kind, ref, tbl) y
	WHERE n > 0
	GROUP BY kind, ref
)
UPDATE sync_sources s SET rows_named = coalesce(n.rows_named, '')
FROM sync_sources s2 LEFT JOIN n ON n.kind = s2.kind AND n.ref = s2.ref
WHERE s.kind = s2.kind AND s.ref = s2.ref AND s.kind <> '';
