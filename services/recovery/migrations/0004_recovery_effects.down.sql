-- Rollback of 0004_recovery_effects: verified effects and kept-off features are no longer kept.
DROP INDEX IF EXISTS actions_killed_idx;
DROP INDEX IF EXISTS actions_verify_unreported_idx;
ALTER TABLE actions DROP CONSTRAINT IF EXISTS actions_verify_whole;
ALTER TABLE actions DROP COLUMN IF EXISTS killed_flags;
ALTER TABLE actions DROP COLUMN IF EXISTS verify_reported;
ALTER TABLE actions DROP COLUMN IF EXISTS verify_seconds;
ALTER TABLE actions DROP COLUMN IF EXISTS verified_at;
ALTER TABLE actions DROP COLUMN IF EXISTS effect;
ALTER TABLE actions DROP COLUMN IF EXISTS verify_outcome;
DELETE FROM schema_migrations WHERE version = '0004_recovery_effects';
