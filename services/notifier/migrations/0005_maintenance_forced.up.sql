-- Issue 14: a window inside business hours is refused unless forced (`?force=true`); `forced` marks the
-- ones scheduled anyway (who did it: `created_by`).
ALTER TABLE maintenance ADD COLUMN IF NOT EXISTS forced boolean NOT NULL DEFAULT false;
