-- 002_more_streams: goals (rocks), their meetings, issues and headlines
-- (design/bloom-api.md "Later streams"). Same conventions as 001_init: ids
-- are Bloom Growth ids, "" is stored as NULL, every mirror table carries raw,
-- first_seen_at, updated_at and deleted_at.

-- goals: rocks/user/{userId}?include_origin=true and archivedrocks/user/{userId}
CREATE TABLE goals (
	id            bigint PRIMARY KEY,
	name          text NOT NULL,
	owner_id      bigint,            -- Owner.Id, else the user whose list it came from
	due_date      timestamptz,
	created_at    timestamptz,
	is_complete   boolean NOT NULL,  -- Complete
	completion    text,              -- Completion as sent ("OnTrack", "AtRisk", "OffTrack", "Complete", ...)
	is_archived   boolean NOT NULL,  -- true when listed by archivedrocks, else Archived (absent = false)
	raw           jsonb NOT NULL,
	first_seen_at timestamptz NOT NULL DEFAULT now(),
	updated_at    timestamptz NOT NULL DEFAULT now(),
	deleted_at    timestamptz
);
CREATE INDEX goals_owner_idx ON goals (owner_id);

-- goal_meetings: one row per element of a goal's Origins
CREATE TABLE goal_meetings (
	goal_id       bigint NOT NULL,
	meeting_id    bigint NOT NULL,
	raw           jsonb NOT NULL,    -- the Origins element
	first_seen_at timestamptz NOT NULL DEFAULT now(),
	updated_at    timestamptz NOT NULL DEFAULT now(),
	deleted_at    timestamptz,
	PRIMARY KEY (goal_id, meeting_id)
);
CREATE INDEX goal_meetings_meeting_idx ON goal_meetings (meeting_id);

-- issues: L10/{meetingId}/issues?INCLUDE_RESOLVED=true and issues/users/{userId}
CREATE TABLE issues (
	id            bigint PRIMARY KEY,
	name          text NOT NULL,
	details_url   text,
	owner_id      bigint,            -- Owner.Id; NULL when Owner is null
	meeting_id    bigint,            -- the meeting asked (meeting list) or OriginId (user list)
	meeting_name  text,              -- Origin
	created_at    timestamptz,
	closed_at     timestamptz,       -- CloseTime
	completed_at  timestamptz,       -- CompleteTime, when sent
	is_complete   boolean NOT NULL,  -- Complete
	is_archived   boolean NOT NULL,  -- Archived (absent = false)
	raw           jsonb NOT NULL,
	first_seen_at timestamptz NOT NULL DEFAULT now(),
	updated_at    timestamptz NOT NULL DEFAULT now(),
	deleted_at    timestamptz
);
CREATE INDEX issues_meeting_idx ON issues (meeting_id);
CREATE INDEX issues_owner_idx ON issues (owner_id);

-- headlines: L10/{meetingId}/headlines?Include_Origin=true and headline/users/{userId}
CREATE TABLE headlines (
	id            bigint PRIMARY KEY,
	name          text NOT NULL,
	details_url   text,
	owner_id      bigint,
	meeting_id    bigint,            -- the meeting asked (meeting list) or OriginId (user list)
	meeting_name  text,              -- Origin
	created_at    timestamptz,
	closed_at     timestamptz,
	is_archived   boolean NOT NULL,  -- Archived (absent = false)
	raw           jsonb NOT NULL,
	first_seen_at timestamptz NOT NULL DEFAULT now(),
	updated_at    timestamptz NOT NULL DEFAULT now(),
	deleted_at    timestamptz
);
CREATE INDEX headlines_meeting_idx ON headlines (meeting_id);
