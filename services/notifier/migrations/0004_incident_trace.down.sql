-- Rollback of 0004_incident_trace: incidents lose the link to their trace.
ALTER TABLE incidents DROP COLUMN IF EXISTS traceparent;
DELETE FROM schema_migrations WHERE version = '0004_incident_trace';
