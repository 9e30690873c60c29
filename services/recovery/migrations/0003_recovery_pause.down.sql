-- Rollback of 0003_recovery_pause: automatic recovery is no longer pausable (and the pause history goes).
DROP INDEX IF EXISTS pauses_scope_idx;
DROP TABLE IF EXISTS pauses;
DELETE FROM schema_migrations WHERE version = '0003_recovery_pause';
