-- Recovery state in Postgres (issue 10, finding 5): episodes, cooldowns and pending verifications
-- survive a restart and are shared by every instance.
--   episodes: triggers that fired; cleared_at is set when their TriggerCleared arrives.
--   actions.lease_until: set while an instance executes the action (a claim); an expired lease is
--     an abandoned claim (the instance died before sending) and a redelivered trigger takes it over.
--   actions.deadline: when a started action fails unless its trigger cleared (the verify window).
--   actions.reported: false between the final status and the published Succeeded/Failed event.
-- Cooldowns and attempts are read from actions, so there is nothing else to keep in sync.

CREATE TABLE IF NOT EXISTS episodes (
    episode_id  text PRIMARY KEY,
    service     text NOT NULL,
    trigger     text NOT NULL,
    instance    text,
    reason      text NOT NULL DEFAULT '',
    fired_at    timestamptz NOT NULL,
    cleared_at  timestamptz
);
CREATE INDEX IF NOT EXISTS episodes_active_idx ON episodes (service) WHERE cleared_at IS NULL;

ALTER TABLE actions ADD COLUMN IF NOT EXISTS lease_until timestamptz;
ALTER TABLE actions ADD COLUMN IF NOT EXISTS deadline timestamptz;
ALTER TABLE actions ADD COLUMN IF NOT EXISTS reported boolean NOT NULL DEFAULT true;

-- one automatic action (or skip) per trigger episode, whichever instance got there first
CREATE UNIQUE INDEX IF NOT EXISTS actions_one_automatic_per_episode ON actions (episode_id) WHERE actor = 'recovery';
CREATE INDEX IF NOT EXISTS actions_cooldown_idx ON actions (service, trigger, started_at DESC) WHERE status <> 'skipped';
CREATE INDEX IF NOT EXISTS actions_pending_idx ON actions (deadline) WHERE status = 'started';
CREATE INDEX IF NOT EXISTS actions_unreported_idx ON actions (finished_at) WHERE NOT reported;
