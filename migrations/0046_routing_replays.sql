-- Offline replays of a route's queries for the router threshold advisor (seed §3.13): per
-- replayed query, the cheap model's score or the cheap-vs-frontier agreement in [0, 1], optional
-- token counts per model and a task label. One `replay_id` per loaded file; the advisor reads the
-- newest replay of a (project, route). Small (a few hundred rows per replay).
CREATE TABLE IF NOT EXISTS routing_replays
(
    project LowCardinality(String),
    route String,
    replay_id String,
    loaded_at DateTime64(3, 'UTC'),
    position UInt32,
    score Float64,
    task String DEFAULT '',
    cheap_input_tokens Nullable(UInt64),
    cheap_output_tokens Nullable(UInt64),
    frontier_input_tokens Nullable(UInt64),
    frontier_output_tokens Nullable(UInt64),
    source_file String DEFAULT ''
)
ENGINE = MergeTree
ORDER BY (project, route, loaded_at, position);
