-- The operations dashboard (SPEC 9a) reads aggregates, never the attempts themselves:
-- beside `webhook_hours` (attempts per webhook and hour), attempt durations per webhook,
-- hour and latency bucket (for the p95), and failed attempts per webhook, hour and event
-- type (for the top failing event types). Both are kept by one statement-level trigger on
-- delivery_attempts, like `webhook_hours`: a batch of attempts costs two more upserts, and
-- the dashboard reads at most a day of hours per webhook.
CREATE TABLE webhook_latency_hours (
    webhook_id BIGINT      NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    hour       TIMESTAMPTZ NOT NULL,
    -- `attempt_latency_bucket(duration_ms)`: 0 under 10 ms, ..., 12 for 60 s and more.
    bucket     SMALLINT    NOT NULL,
    attempts   BIGINT      NOT NULL DEFAULT 0,
    PRIMARY KEY (webhook_id, hour, bucket)
);

CREATE TABLE webhook_failure_hours (
    webhook_id BIGINT      NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    hour       TIMESTAMPTZ NOT NULL,
    event_type TEXT        NOT NULL,
    failed     BIGINT      NOT NULL DEFAULT 0,
    PRIMARY KEY (webhook_id, hour, event_type)
);

-- The upper bounds (ms, exclusive) of the buckets; the last bucket has none. Kept in step
-- with `models::hourly::LATENCY_BOUNDS_MS`.
CREATE FUNCTION attempt_latency_bucket(duration_ms INT) RETURNS SMALLINT
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT width_bucket(duration_ms, ARRAY[10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000])::smallint
$$;

CREATE FUNCTION count_attempt_aggregates() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- In key order, so concurrent writers lock the same rows in the same order.
    INSERT INTO webhook_latency_hours (webhook_id, hour, bucket, attempts)
    SELECT webhook_id, date_trunc('hour', started_at, 'UTC'), attempt_latency_bucket(duration_ms), count(*)
    FROM new_attempts
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3
    ON CONFLICT (webhook_id, hour, bucket) DO UPDATE
        SET attempts = webhook_latency_hours.attempts + EXCLUDED.attempts;
    -- Failed attempts only (the rarer kind): each finds its delivery by primary key.
    INSERT INTO webhook_failure_hours (webhook_id, hour, event_type, failed)
    SELECT a.webhook_id, date_trunc('hour', a.started_at, 'UTC'), d.event_type, count(*)
    FROM new_attempts a
    JOIN deliveries d ON d.id = a.delivery_id
    WHERE NOT a.succeeded
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3
    ON CONFLICT (webhook_id, hour, event_type) DO UPDATE
        SET failed = webhook_failure_hours.failed + EXCLUDED.failed;
    RETURN NULL;
END
$$;

CREATE TRIGGER delivery_attempts_count_aggregates
    AFTER INSERT ON delivery_attempts
    REFERENCING NEW TABLE AS new_attempts
    FOR EACH STATEMENT EXECUTE FUNCTION count_attempt_aggregates();

INSERT INTO webhook_latency_hours (webhook_id, hour, bucket, attempts)
SELECT webhook_id, date_trunc('hour', started_at, 'UTC'), attempt_latency_bucket(duration_ms), count(*)
FROM delivery_attempts
GROUP BY 1, 2, 3;

INSERT INTO webhook_failure_hours (webhook_id, hour, event_type, failed)
SELECT a.webhook_id, date_trunc('hour', a.started_at, 'UTC'), d.event_type, count(*)
FROM delivery_attempts a
JOIN deliveries d ON d.id = a.delivery_id
WHERE NOT a.succeeded
GROUP BY 1, 2, 3;
