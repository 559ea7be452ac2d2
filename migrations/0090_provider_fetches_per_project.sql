-- A bucket's latest fetch is chosen per project. Two projects collecting the same export stream
-- (two OpenAI organisations, each with its own admin key and llmledger project) wrote manifest
-- rows under the same (stream, bucket_start): the later fetch of one project hid the other
-- project's bill from the `*_live` views, and the writer's housekeeping then deleted it. The
-- manifest now carries the project and the views pick the latest fetch of (project, stream,
-- bucket).
ALTER TABLE provider_bucket_fetches ADD COLUMN IF NOT EXISTS project LowCardinality(String) DEFAULT '' FIRST;

-- Manifest rows written before carry no project: each is copied to every project that has rows in
-- its stream (same fetch, same instant), so every bucket keeps the fetch that was live for it.
-- Re-running it only adds copies of the same fetches, which change no bucket's latest fetch.
INSERT INTO provider_bucket_fetches (project, stream, bucket_start, bucket_end, fetch_id, fetched_at, rows)
SELECT p.project, m.stream, m.bucket_start, m.bucket_end, m.fetch_id, m.fetched_at, m.rows
FROM provider_bucket_fetches AS m
INNER JOIN (
    SELECT DISTINCT project, stream FROM provider_costs
    UNION DISTINCT
    SELECT DISTINCT project, stream FROM provider_usage
) AS p ON p.stream = m.stream
WHERE m.project = '';

CREATE OR REPLACE VIEW provider_usage_live AS
SELECT * FROM provider_usage
WHERE (project, stream, bucket_start, fetch_id) IN (
    SELECT project, stream, bucket_start, argMax(fetch_id, (fetched_at, fetch_id))
    FROM provider_bucket_fetches WHERE project != '' GROUP BY project, stream, bucket_start
);

CREATE OR REPLACE VIEW provider_costs_live AS
SELECT * FROM provider_costs
WHERE (project, stream, bucket_start, fetch_id) IN (
    SELECT project, stream, bucket_start, argMax(fetch_id, (fetched_at, fetch_id))
    FROM provider_bucket_fetches WHERE project != '' GROUP BY project, stream, bucket_start
);
