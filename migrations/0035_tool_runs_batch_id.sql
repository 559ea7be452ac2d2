-- Tool runs carry the id of the write that stored them, like calls: with materialized views on
-- the table, an INSERT's written-rows count includes the rows the views wrote, so the writer
-- counts its own rows by batch_id instead.
ALTER TABLE tool_runs ADD COLUMN IF NOT EXISTS batch_id String DEFAULT '' AFTER ingested_at;
