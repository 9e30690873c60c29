-- Issue 10, findings 5 and 12: the notifier writes first and sends afterwards.
--   incidents.escalate_at: when the incident escalates unless acknowledged, mitigated or resolved (kept
--     across restarts and shared by instances); incidents.version: optimistic concurrency.
--   outbox: events written in the same transaction as the change, published by the relay.
--   deliveries.status/attempts/next_at/lease_until: a notice is pending until sent; a failed webhook is
--     tried again at next_at (backoff) until the policy's redeliveries are used up.

ALTER TABLE incidents ADD COLUMN IF NOT EXISTS escalate_at timestamptz;
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS version integer NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS incidents_escalate_idx ON incidents (escalate_at) WHERE status = 'open';

CREATE TABLE IF NOT EXISTS outbox (
    id           bigserial PRIMARY KEY,
    topic        text NOT NULL,
    payload      text NOT NULL,
    created_at   timestamptz NOT NULL,
    attempts     integer NOT NULL DEFAULT 0,
    next_at      timestamptz NOT NULL,
    lease_until  timestamptz,
    last_error   text NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS outbox_due_idx ON outbox (next_at);

ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS status text NOT NULL DEFAULT 'sent';
ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS attempts integer NOT NULL DEFAULT 1;
ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS next_at timestamptz;
ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS lease_until timestamptz;
UPDATE deliveries SET status = 'failed' WHERE NOT ok;
CREATE INDEX IF NOT EXISTS deliveries_due_idx ON deliveries (next_at) WHERE status = 'pending';
