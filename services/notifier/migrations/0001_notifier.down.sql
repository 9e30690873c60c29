-- Rollback of 0001_notifier: drops incidents, timelines, deliveries and reports.
DROP TABLE IF EXISTS reports;
DROP TABLE IF EXISTS deliveries;
DROP TABLE IF EXISTS timeline;
DROP TABLE IF EXISTS incidents;
DROP TABLE IF EXISTS schema_migrations;
