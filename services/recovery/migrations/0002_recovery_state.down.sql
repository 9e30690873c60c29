-- Rollback of 0002_recovery_state: back to the audit log only (state in memory again).
DROP INDEX IF EXISTS actions_unreported_idx;
DROP INDEX IF EXISTS actions_pending_idx;
DROP INDEX IF EXISTS actions_cooldown_idx;
DROP INDEX IF EXISTS actions_one_automatic_per_episode;
ALTER TABLE actions DROP COLUMN IF EXISTS reported;
ALTER TABLE actions DROP COLUMN IF EXISTS deadline;
ALTER TABLE actions DROP COLUMN IF EXISTS lease_until;
DROP TABLE IF EXISTS episodes;
DELETE FROM schema_migrations WHERE version = '0002_recovery_state';
