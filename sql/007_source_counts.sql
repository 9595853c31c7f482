-- 007: a source's digest comes with the number of rows its body named.
--
-- A sync that finds a body unchanged counts its rows as unchanged, per
-- table. Those counts were summed from the source's yields with a join per
-- batch: 0.33-0.48 s of the 1.4-2.0 s PostgreSQL spent on a no-change sync
-- of the bench's large org. rows_named[tbl + 1] holds the count for table
-- tbl (the table index of sync_yields, 11 tables) and is read with the
-- digest, which is looked up anyway. NULL: counted from the yields.
ALTER TABLE sync_sources ADD COLUMN IF NOT EXISTS rows_named integer[];

-- The sources recorded so far get their counts from their yields.
WITH n AS (
	SELECT kind, ref, tbl, sum(cardinality(k1))::integer AS n
	FROM sync_yields GROUP BY kind, ref, tbl
), c AS (
	SELECT s.kind, s.ref, array_agg(coalesce(n.n, 0) ORDER BY t.tbl) AS rows_named
	FROM sync_sources s CROSS JOIN generate_series(0, 10) AS t(tbl)
	LEFT JOIN n ON n.kind = s.kind AND n.ref = s.ref AND n.tbl = t.tbl
	WHERE s.kind <> ''
	GROUP BY s.kind, s.ref
)
UPDATE sync_sources s SET rows_named = c.rows_named FROM c WHERE s.kind = c.kind AND s.ref = c.ref;
