-- Rollback of 0002_notifier_outbox: unsent events and pending notices are dropped with it.
DROP INDEX IF EXISTS deliveries_due_idx;
ALTER TABLE deliveries DROP COLUMN IF EXISTS lease_until;
ALTER TABLE deliveries DROP COLUMN IF EXISTS next_at;
ALTER TABLE deliveries DROP COLUMN IF EXISTS attempts;
ALTER TABLE deliveries DROP COLUMN IF EXISTS status;
DROP TABLE IF EXISTS outbox;
DROP INDEX IF EXISTS incidents_escalate_idx;
ALTER TABLE incidents DROP COLUMN IF EXISTS version;
ALTER TABLE incidents DROP COLUMN IF EXISTS escalate_at;
DELETE FROM schema_migrations WHERE version = '0002_notifier_outbox';
