-- Who runs the scheduler when several service replicas share one warehouse (warehouse/lease.py).
-- One row per term of a named lease. A term is claimed by inserting its row with the
-- deduplication token '<name>/<term>': the engine keeps the first insert of a token and drops
-- the rest, so each term has exactly one owner (compare-and-set without a lock service). Old
-- terms are pruned by the lease holder, never the newest, so a term number is never reused.
CREATE TABLE IF NOT EXISTS scheduler_leases
(
    name LowCardinality(String),
    term UInt64,
    owner String,
    claimed_at DateTime64(3, 'UTC') DEFAULT now64(3),
    expires_at DateTime64(3, 'UTC')
)
ENGINE = MergeTree
ORDER BY (name, term)
SETTINGS non_replicated_deduplication_window = 1000;
