-- flags service schema: flag definitions (flagd format + Safeguard fields), audit log (also the
-- outbox for Kafka), scheduled changes.
-- runs with search_path = the service schema (FLAGS_DB_SCHEMA, default "flags"), created by the service

CREATE SEQUENCE IF NOT EXISTS revision_seq;

CREATE TABLE IF NOT EXISTS flags (
    key             text PRIMARY KEY,
    definition      jsonb NOT NULL,
    off_variant     text,
    is_new          boolean NOT NULL DEFAULT true,
    killed          boolean NOT NULL DEFAULT false,
    rollout_percent double precision,
    description     text NOT NULL DEFAULT '',
    version         integer NOT NULL DEFAULT 1,
    revision        bigint NOT NULL DEFAULT nextval('revision_seq'),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    deleted_at      timestamptz
);

CREATE TABLE IF NOT EXISTS audit_log (
    id          bigserial PRIMARY KEY,
    flag_key    text NOT NULL,
    action      text NOT NULL,
    actor       text NOT NULL,
    reason      text NOT NULL DEFAULT '',
    version     integer NOT NULL,
    before      jsonb,
    after       jsonb,
    at          timestamptz NOT NULL DEFAULT now(),
    published   boolean NOT NULL DEFAULT false
);
CREATE INDEX IF NOT EXISTS audit_log_flag_key_idx ON audit_log (flag_key, id);
CREATE INDEX IF NOT EXISTS audit_log_unpublished_idx ON audit_log (id) WHERE NOT published;

CREATE TABLE IF NOT EXISTS scheduled_changes (
    id            bigserial PRIMARY KEY,
    flag_key      text NOT NULL,
    action        text NOT NULL,
    percent       double precision,
    run_at        timestamptz NOT NULL,
    reason        text NOT NULL DEFAULT '',
    requested_by  text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    status        text NOT NULL DEFAULT 'pending',
    done_at       timestamptz,
    error         text
);
CREATE INDEX IF NOT EXISTS scheduled_changes_due_idx ON scheduled_changes (run_at) WHERE status = 'pending';
