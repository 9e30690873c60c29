-- demo v2: a badge per item for the `streaks` feature. Nullable, no default rewrite: v1 keeps
-- reading and inserting items as before (Database Migration Safety: new columns nullable).
ALTER TABLE demo.items ADD COLUMN IF NOT EXISTS badge text;
