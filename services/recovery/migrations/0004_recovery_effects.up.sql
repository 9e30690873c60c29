-- Verified effects and kept-off features in recovery's own audit log (issue 14).
--   verify_outcome: 'verified' (the effect was seen: `effect`, `verified_at`, `verify_seconds` from the action's
--     start) or 'not_seen' (nothing seen within the check's timeout); NULL while not looked at yet. Written in
--     one UPDATE, and the CHECK below refuses a half-written outcome.
--   verify_reported: false between a verified effect and its published RecoveryActionVerified (republished by
--     the tick, like `reported`).
--   killed_flags: the flags a disable_new_features turned off (they stay off until a person turns them on).
ALTER TABLE actions ADD COLUMN IF NOT EXISTS verify_outcome text;
ALTER TABLE actions ADD COLUMN IF NOT EXISTS effect text;
ALTER TABLE actions ADD COLUMN IF NOT EXISTS verified_at timestamptz;
ALTER TABLE actions ADD COLUMN IF NOT EXISTS verify_seconds double precision;
ALTER TABLE actions ADD COLUMN IF NOT EXISTS verify_reported boolean NOT NULL DEFAULT true;
ALTER TABLE actions ADD COLUMN IF NOT EXISTS killed_flags text[] NOT NULL DEFAULT '{}';
ALTER TABLE actions ADD CONSTRAINT actions_verify_whole CHECK (
    (verify_outcome IS NULL AND effect IS NULL AND verified_at IS NULL AND verify_seconds IS NULL)
    OR (verify_outcome = 'verified' AND effect IS NOT NULL AND verified_at IS NOT NULL AND verify_seconds >= 0)
    OR (verify_outcome = 'not_seen' AND effect IS NOT NULL AND verified_at IS NOT NULL AND verify_seconds >= 0));
CREATE INDEX IF NOT EXISTS actions_verify_unreported_idx ON actions (verified_at) WHERE NOT verify_reported;
CREATE INDEX IF NOT EXISTS actions_killed_idx ON actions (started_at DESC) WHERE killed_flags <> '{}';
