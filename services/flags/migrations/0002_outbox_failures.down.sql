DROP INDEX IF EXISTS audit_log_publish_failed_idx;
ALTER TABLE audit_log DROP COLUMN IF EXISTS publish_failed_at;
ALTER TABLE audit_log DROP COLUMN IF EXISTS publish_error;
