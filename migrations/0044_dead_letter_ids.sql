-- Each dead letter carries a content id (source, reason, line, event id and the full raw payload),
-- so re-ingesting a file or replaying a spool segment after a crash stores its bad records once:
-- the writer skips letters whose id is already stored. Letters written before have ''.
ALTER TABLE dead_letters ADD COLUMN IF NOT EXISTS letter_id String DEFAULT '' AFTER batch_id;
