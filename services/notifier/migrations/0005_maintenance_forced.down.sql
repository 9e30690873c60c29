-- Rollback of 0005_maintenance_forced: windows lose the mark of having been forced into business hours.
ALTER TABLE maintenance DROP COLUMN IF EXISTS forced;
DELETE FROM schema_migrations WHERE version = '0005_maintenance_forced';
