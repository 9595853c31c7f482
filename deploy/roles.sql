-- roles.sql — least-privilege PostgreSQL roles for bloomsync.
--
--   bloomsync_owner   the role bloomsync connects as: owns the mirror schema
--                     and everything in it, may create in it (migrations),
--                     and may create temporary tables (the staging tables of
--                     each batch). No other rights in the database.
--   bloomsync_reader  read-only, for BI users and dashboards: USAGE on the
--                     schema and SELECT on every table in it, now and in the
--                     future. Grant it to people: GRANT bloomsync_reader TO alice;
--
-- Run once per database as a superuser (or a role with CREATEROLE that owns
-- the database), connected to the database that holds the mirror:
--
--   psql -d bloom -v schema=bloom -f deploy/roles.sql
--
-- :schema defaults to bloom and must match postgres.schema in bloomsync.conf.
-- Safe to run again. Roles are created without a password; set one with
--   psql -c '\password bloomsync_owner'
-- (or use peer or certificate authentication) and put it in ~/.pgpass,
-- PGPASSWORD or PGPASSFILE, never in the conninfo of the config file.
\set ON_ERROR_STOP on
\if :{?schema}
\else
\set schema bloom
\endif

BEGIN;
SET LOCAL client_min_messages = warning;

SELECT 'CREATE ROLE bloomsync_owner LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE'
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bloomsync_owner') \gexec
SELECT 'CREATE ROLE bloomsync_reader NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE'
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bloomsync_reader') \gexec

-- The database: connect, and temporary tables for the owner. (PUBLIC keeps
-- whatever it has: in a database shared with other applications, revoking
-- from PUBLIC is the DBA's decision, not this script's.)
SELECT current_database() AS dbname \gset
GRANT CONNECT, TEMPORARY ON DATABASE :"dbname" TO bloomsync_owner;
GRANT CONNECT ON DATABASE :"dbname" TO bloomsync_reader;

-- The schema, owned by bloomsync_owner (bloomsync migrate then needs no
-- CREATE on the database), closed to everybody else.
CREATE SCHEMA IF NOT EXISTS :"schema" AUTHORIZATION bloomsync_owner;
ALTER SCHEMA :"schema" OWNER TO bloomsync_owner;
REVOKE ALL ON SCHEMA :"schema" FROM PUBLIC;

-- Tables created earlier by another role (say, a first migrate run as
-- postgres) change hands; their sequences follow them.
SELECT format('ALTER TABLE %I.%I OWNER TO bloomsync_owner', n.nspname, c.relname)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = :'schema' AND c.relkind IN ('r', 'p', 'v', 'm')
  AND c.relowner <> 'bloomsync_owner'::regrole \gexec

-- Read-only access, to the tables there now and to those later migrations add.
GRANT USAGE ON SCHEMA :"schema" TO bloomsync_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA :"schema" TO bloomsync_reader;
ALTER DEFAULT PRIVILEGES FOR ROLE bloomsync_owner IN SCHEMA :"schema"
	GRANT SELECT ON TABLES TO bloomsync_reader;

COMMIT;
