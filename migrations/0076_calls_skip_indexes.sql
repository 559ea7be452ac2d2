-- Min-max skip indexes on `calls` for the two dashboard reads that look for rare calls in a whole
-- range: unpriced models (`unpriced`: calls of a model without a price cluster in the granules of
-- their route and model) and the calls with the most reasoning tokens (`reasoning_tokens`: the read
-- asks for calls above a floor taken from the token rollups, and ORDER BY … LIMIT prunes by it too).
-- Granules whose min-max cannot match are skipped instead of read. Months stored before this
-- migration get the indexes built here (a mutation that reads the two columns once).
ALTER TABLE calls
    ADD INDEX IF NOT EXISTS idx_unpriced unpriced TYPE minmax GRANULARITY 1,
    ADD INDEX IF NOT EXISTS idx_reasoning reasoning_tokens TYPE minmax GRANULARITY 1;

ALTER TABLE calls MATERIALIZE INDEX idx_unpriced SETTINGS mutations_sync = 2;

ALTER TABLE calls MATERIALIZE INDEX idx_reasoning SETTINGS mutations_sync = 2;
