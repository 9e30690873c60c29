-- Rollback of 0001_flags: drops the flags schema and everything in it (flags, audit, schedule).
DROP TABLE IF EXISTS scheduled_changes;
DROP TABLE IF EXISTS audit_log;
DROP TABLE IF EXISTS flags;
DROP SEQUENCE IF EXISTS revision_seq;
-- schema_migrations is the runner's own table and stays (`db rollback` deletes this row too)
DELETE FROM schema_migrations WHERE version = '0001_flags';

