-- Hourly rollup of self-hosted calls (deployment = 'self_hosted', node set): calls and tokens
-- (input + output) per project, hour, node, route, model, provider, team, feature and API key, kept
-- by a materialized view. Infra cost attribution splits each node-hour's GPU cost over the calls
-- the node served in that hour by their tokens (`warehouse.queries.nodes.infra_by`); whole hours
-- come from here instead of every self-hosted call of the range. Read with sum() and GROUP BY;
-- rebuilt with the other rollups (`warehouse.rollups`).
CREATE TABLE IF NOT EXISTS calls_node_hourly
(
    project LowCardinality(String),
    hour DateTime('UTC'),
    node LowCardinality(String),
    route LowCardinality(String),
    model LowCardinality(String),
    provider LowCardinality(String),
    team LowCardinality(String),
    feature LowCardinality(String),
    api_key_id String,

    calls SimpleAggregateFunction(sum, UInt64),
    io_tokens SimpleAggregateFunction(sum, UInt64)
)
ENGINE = AggregatingMergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (project, hour, node, route, model, provider, team, feature, api_key_id);

CREATE MATERIALIZED VIEW IF NOT EXISTS calls_node_hourly_mv TO calls_node_hourly AS
SELECT
    calls.project AS project,
    toStartOfHour(calls.ts) AS hour,
    calls.node AS node,
    calls.route AS route,
    calls.model AS model,
    calls.provider AS provider,
    calls.team AS team,
    calls.feature AS feature,
    calls.api_key_id AS api_key_id,
    toUInt64(count()) AS calls,
    toUInt64(sum(calls.input_tokens + calls.output_tokens)) AS io_tokens
FROM calls
WHERE calls.deployment = 'self_hosted' AND calls.node != ''
GROUP BY project, hour, node, route, model, provider, team, feature, api_key_id;

-- Back-fill the months stored before this migration (those without rollup rows yet).
INSERT INTO calls_node_hourly
SELECT
    calls.project AS project,
    toStartOfHour(calls.ts) AS hour,
    calls.node AS node,
    calls.route AS route,
    calls.model AS model,
    calls.provider AS provider,
    calls.team AS team,
    calls.feature AS feature,
    calls.api_key_id AS api_key_id,
    toUInt64(count()) AS calls,
    toUInt64(sum(calls.input_tokens + calls.output_tokens)) AS io_tokens
FROM calls
WHERE calls.deployment = 'self_hosted' AND calls.node != ''
    AND calls._partition_id NOT IN (SELECT DISTINCT _partition_id FROM calls_node_hourly)
GROUP BY project, hour, node, route, model, provider, team, feature, api_key_id;
