-- Rollback of 0001_flags: drops the flags schema and everything in it (flags, audit, schedule).
DROP TABLE IF EXISTS scheduled_changes;
DROP TABLE IF EXISTS audit_log;
DROP TABLE IF EXISTS flags;
DROP SEQUENCE IF EXISTS revision_seq;
DROP TABLE IF EXISTS schema_migrations;

