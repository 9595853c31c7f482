-- 003_views: the questions L10 teams ask, as views over the mirror (see
-- docs/views.md). Every view ignores rows whose deleted_at is set. Weeks,
-- days and quarters are UTC calendar ones, whatever the session's TimeZone.

-- Per meeting and ISO week of the due date: todos due that week, how many
-- were completed on time (completed_at on or before the due date's UTC
-- day), and the rate. A todo marked complete without a completed_at is not
-- counted as on time: nothing says when it was done. Personal todos (no
-- meeting) and todos without a due date are left out.
CREATE VIEW todo_completion_weekly AS
SELECT t.meeting_id,
       to_char(t.due_date AT TIME ZONE 'UTC', 'IYYY-"W"IW') AS week,
       date_trunc('week', t.due_date AT TIME ZONE 'UTC')::date AS week_start,
       count(*) AS todos_due,
       count(*) FILTER (WHERE t.completed_at IS NOT NULL
                        AND (t.completed_at AT TIME ZONE 'UTC')::date
                            <= (t.due_date AT TIME ZONE 'UTC')::date) AS completed_on_time,
       round(count(*) FILTER (WHERE t.completed_at IS NOT NULL
                              AND (t.completed_at AT TIME ZONE 'UTC')::date
                                  <= (t.due_date AT TIME ZONE 'UTC')::date)::numeric
             / count(*), 4) AS completion_rate
FROM todos t
WHERE t.deleted_at IS NULL AND t.meeting_id IS NOT NULL AND t.due_date IS NOT NULL
GROUP BY 1, 2, 3;

-- One row per score (Bloom Growth keeps one per measurable and week): the
-- value, the target (the score's own, else the measurable's), the
-- measurable's direction, and whether the value is on track:
--   GreaterThan          value >= target  (Bloom shows it as "≥")
--   GreaterThanNotEqual  value >  target
--   LessThan             value <  target
--   LessThanOrEqual      value <= target
--   EqualTo              value =  target
--   Between              target <= value <= AltTarget (from measurables.raw)
-- NULL when nothing was entered, when the target (or AltTarget) is missing,
-- or when the direction is unknown.
CREATE VIEW scorecard_weekly AS
WITH s AS (
	SELECT sc.id AS score_id, sc.measurable_id,
	       coalesce(m.name, sc.measurable_name) AS measurable_name,
	       sc.week, sc.week_id, sc.value,
	       coalesce(sc.target, m.target) AS target,
	       CASE WHEN jsonb_typeof(m.raw -> 'AltTarget') = 'number'
	            THEN (m.raw ->> 'AltTarget')::numeric END AS alt_target,
	       m.direction
	FROM scores sc
	LEFT JOIN measurables m ON m.id = sc.measurable_id AND m.deleted_at IS NULL
	WHERE sc.deleted_at IS NULL
)
SELECT s.measurable_id, s.measurable_name, s.week, s.week_id, s.score_id, s.value, s.target, s.alt_target,
       s.direction,
       CASE s.direction
            WHEN 'GreaterThan' THEN s.value >= s.target
            WHEN 'GreaterThanNotEqual' THEN s.value > s.target
            WHEN 'LessThan' THEN s.value < s.target
            WHEN 'LessThanOrEqual' THEN s.value <= s.target
            WHEN 'EqualTo' THEN s.value = s.target
            WHEN 'Between' THEN s.value >= s.target AND s.value <= s.alt_target
       END AS on_track
FROM s;

-- Per owner and quarter of the due date (quarter = its first day; NULL for
-- goals without a due date): goals, done (is_complete or Completion
-- "Complete"), on track (not done, Completion "OnTrack") and off track
-- (not done, any other Completion, none included). Archived goals count in
-- their quarter.
CREATE VIEW goals_status AS
WITH g AS (
	SELECT owner_id,
	       date_trunc('quarter', due_date AT TIME ZONE 'UTC')::date AS quarter,
	       (is_complete OR completion IS NOT DISTINCT FROM 'Complete') AS done,
	       completion
	FROM goals
	WHERE deleted_at IS NULL
)
SELECT owner_id, quarter,
       count(*) AS goals,
       count(*) FILTER (WHERE NOT done AND completion IS NOT DISTINCT FROM 'OnTrack') AS on_track,
       count(*) FILTER (WHERE NOT done AND completion IS DISTINCT FROM 'OnTrack') AS off_track,
       count(*) FILTER (WHERE done) AS done
FROM g
GROUP BY owner_id, quarter;

-- One row per open issue (not complete, not closed, not archived) with its
-- meeting and its age in whole days: floor((now() - created_at) / 1 day),
-- NULL without a created_at. now() is the start of the querying
-- transaction, so one query sees one reference time.
CREATE VIEW open_issues_by_meeting AS
SELECT i.meeting_id,
       coalesce(m.name, i.meeting_name) AS meeting_name,
       i.id AS issue_id,
       i.name AS issue_name,
       i.owner_id,
       i.created_at,
       floor(extract(epoch FROM now() - i.created_at) / 86400)::integer AS age_days
FROM issues i
LEFT JOIN meetings m ON m.id = i.meeting_id AND m.deleted_at IS NULL
WHERE i.deleted_at IS NULL AND NOT i.is_complete AND i.closed_at IS NULL AND NOT i.is_archived;
