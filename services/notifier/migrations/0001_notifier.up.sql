-- notifier service schema: incidents, their timelines, every notification, post-incident reports.
-- runs with search_path = the service schema (NOTIFIER_DB_SCHEMA, default "notifier"), created by the service

CREATE TABLE IF NOT EXISTS incidents (
    incident_id      text PRIMARY KEY,
    service          text NOT NULL,
    trigger          text NOT NULL,
    episode_id       text NOT NULL,
    title            text NOT NULL,
    severity         text NOT NULL,
    status           text NOT NULL,
    level            integer NOT NULL DEFAULT 1,
    acknowledged_by  text,
    opened_at        timestamptz NOT NULL,
    mitigated_at     timestamptz,
    resolved_at      timestamptz,
    resolved_by      text
);
CREATE INDEX IF NOT EXISTS incidents_open_idx ON incidents (status) WHERE status <> 'resolved';
CREATE INDEX IF NOT EXISTS incidents_resolved_idx ON incidents (resolved_at DESC);

CREATE TABLE IF NOT EXISTS timeline (
    id           bigserial PRIMARY KEY,
    incident_id  text NOT NULL REFERENCES incidents (incident_id) ON DELETE CASCADE,
    at           timestamptz NOT NULL,
    kind         text NOT NULL,
    text         text NOT NULL,
    actor        text NOT NULL
);
CREATE INDEX IF NOT EXISTS timeline_incident_idx ON timeline (incident_id, id);

CREATE TABLE IF NOT EXISTS deliveries (
    delivery_id  text PRIMARY KEY,
    incident_id  text,
    channel      text NOT NULL,
    recipient    text NOT NULL,
    ok           boolean NOT NULL,
    error        text NOT NULL DEFAULT '',
    message      text NOT NULL,
    at           timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_incident_idx ON deliveries (incident_id, at);

CREATE TABLE IF NOT EXISTS reports (
    incident_id  text PRIMARY KEY REFERENCES incidents (incident_id) ON DELETE CASCADE,
    markdown     text NOT NULL,
    created_at   timestamptz NOT NULL
);
