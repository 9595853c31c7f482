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
-- Run once per database, connected to the database that holds the mirror,
-- as a superuser or as a role with CREATEROLE that owns that database.
-- The database must exist; this script does not create it:
--
--   createdb bloom                  (or, as postgres: createdb -O dba bloom)
--   psql -d bloom -v schema=bloom -f deploy/roles.sql
--
-- A role that is not a superuser must be a member of bloomsync_owner to give
-- it the schema (CREATE SCHEMA AUTHORIZATION, ALTER ... OWNER, ALTER DEFAULT
-- PRIVILEGES FOR ROLE): the script grants bloomsync_owner to it (the DBA may
-- then act as bloomsync_owner, as a superuser can). Such a role can hand over
-- only what it owns or may act for: a schema or tables created earlier by
-- another role (say postgres) need a superuser, or their owner, to run it.
-- (Tested on PostgreSQL 15; from 16 on, a CREATEROLE role may grant only the
-- roles it created or holds with ADMIN OPTION, so let it create both roles.)
--
-- :schema defaults to bloom and must match postgres.schema in bloomsync.conf.
-- Safe to run again. Roles are created without a password; set one with
--   psql -c '\password bloomsync_owner'
-- and put it in the file PGPASSFILE names, or in PGPASSWORD, never in the
-- conninfo of the config file (the bloomsync system user has no home, hence
-- no ~/.pgpass). Or use certificate authentication, or peer authentication
-- with a pg_ident.conf map from the system user bloomsync to the role
-- bloomsync_owner (see docs/operations.md, Install).
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

-- Not a superuser (a CREATEROLE role that owns the database): become a member
-- of bloomsync_owner, without which giving it the schema below fails with
-- "must be member of role bloomsync_owner". Granted once: skipped when the
-- membership (with its privileges inherited) is there already.
SELECT format('GRANT bloomsync_owner TO %I', current_user)
WHERE NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
  AND NOT pg_has_role('bloomsync_owner', 'USAGE') \gexec

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
