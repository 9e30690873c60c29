-- Rollback of 0001_recovery: drops the audit log of recovery actions.
DROP TABLE IF EXISTS actions;
DROP TABLE IF EXISTS schema_migrations;
