-- API keys of the service: only a SHA-256 of the secret is stored (keys are 256-bit random
-- tokens, so a slow hash adds nothing). One row per key version: revoking inserts a newer row
-- with revoked_at set; readers take the latest version per key_id (ReplacingMergeTree on
-- updated_at, read with FINAL — the table is tiny).
CREATE TABLE IF NOT EXISTS api_keys
(
    key_id String,
    secret_sha256 String,
    name String DEFAULT '',
    scopes Array(LowCardinality(String)),
    project String DEFAULT '',
    created_at DateTime64(3, 'UTC'),
    revoked_at Nullable(DateTime64(3, 'UTC')),
    updated_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY key_id;
