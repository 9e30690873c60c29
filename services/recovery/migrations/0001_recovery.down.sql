-- Rollback of 0001_recovery: drops the audit log of recovery actions.
DROP TABLE IF EXISTS actions;
-- schema_migrations is the runner's own table and stays (`db rollback` deletes this row too)
DELETE FROM schema_migrations WHERE version = '0001_recovery';
