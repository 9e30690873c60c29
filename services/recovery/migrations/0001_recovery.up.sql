-- recovery service schema: the audit log of every recovery action (automatic or operator).
-- runs with search_path = the service schema (RECOVERY_DB_SCHEMA, default "recovery"), created by the service

CREATE TABLE IF NOT EXISTS actions (
    action_id    text PRIMARY KEY,
    service      text NOT NULL,
    action       text NOT NULL,
    trigger      text,
    episode_id   text,
    instance     text,
    attempt      integer NOT NULL DEFAULT 1,
    actor        text NOT NULL,
    reason       text NOT NULL DEFAULT '',
    status       text NOT NULL,
    detail       text NOT NULL DEFAULT '',
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz
);
CREATE INDEX IF NOT EXISTS actions_started_idx ON actions (started_at DESC);
CREATE INDEX IF NOT EXISTS actions_service_idx ON actions (service, started_at DESC);
