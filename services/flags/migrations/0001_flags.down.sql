-- Rollback of 0001_flags: drops the flags schema and everything in it (flags, audit, schedule).
DROP TABLE IF EXISTS flags.scheduled_changes;
DROP TABLE IF EXISTS flags.audit_log;
DROP TABLE IF EXISTS flags.flags;
DROP SEQUENCE IF EXISTS flags.revision_seq;
DROP TABLE IF EXISTS flags.schema_migrations;
DROP SCHEMA IF EXISTS flags;
