-- an outbox row Kafka refuses for good (e.g. a message over the broker's size limit) is set aside
-- with the reason, so it never blocks the rows after it. New columns are nullable (runbook).
ALTER TABLE audit_log ADD COLUMN IF NOT EXISTS publish_error text;
ALTER TABLE audit_log ADD COLUMN IF NOT EXISTS publish_failed_at timestamptz;
CREATE INDEX IF NOT EXISTS audit_log_publish_failed_idx ON audit_log (id) WHERE publish_error IS NOT NULL;
