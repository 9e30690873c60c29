-- Rollback of 0001_notifier: drops incidents, timelines, deliveries and reports.
DROP TABLE IF EXISTS reports;
DROP TABLE IF EXISTS deliveries;
DROP TABLE IF EXISTS timeline;
DROP TABLE IF EXISTS incidents;
-- schema_migrations is the runner's own table and stays (`db rollback` deletes this row too)
DELETE FROM schema_migrations WHERE version = '0001_notifier';
