-- Issue 15: one incident is one trace. The W3C traceparent of the span that opened the incident (its
-- trigger's trace): the API shows its trace id (a link to the trace viewer) and later notices continue it.
-- Nullable: incidents opened before this migration, or without tracing, have none.
ALTER TABLE incidents ADD COLUMN IF NOT EXISTS traceparent text;
