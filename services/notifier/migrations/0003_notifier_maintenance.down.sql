-- Rollback of 0003_notifier_maintenance: windows, subscribers and their pending notices are dropped with it.
DROP TABLE IF EXISTS notifier_keys;
DROP TABLE IF EXISTS subscriber_deliveries;
DROP TABLE IF EXISTS subscribers;
ALTER TABLE incidents DROP COLUMN IF EXISTS during_maintenance;
DROP TABLE IF EXISTS maintenance;
DELETE FROM schema_migrations WHERE version = '0003_notifier_maintenance';
