ALTER TABLE deliveries RENAME TO deliveries_partitioned;
ALTER INDEX deliveries_webhook_log_idx RENAME TO deliveries_partitioned_webhook_log_idx;
ALTER INDEX deliveries_event_id_idx RENAME TO deliveries_partitioned_event_id_idx;
ALTER INDEX deliveries_webhook_status_log_idx RENAME TO deliveries_partitioned_webhook_status_log_idx;
ALTER INDEX deliveries_webhook_type_log_idx RENAME TO deliveries_partitioned_webhook_type_log_idx;
DROP INDEX deliveries_due_by_webhook_idx;
DROP INDEX deliveries_ordering_idx;
DROP INDEX deliveries_parked_idx;
DROP TRIGGER deliveries_event_type ON deliveries_partitioned;

CREATE TABLE deliveries (
    id                   BIGINT PRIMARY KEY DEFAULT nextval('deliveries_id_seq'),
    tenant_id            BIGINT NOT NULL,
    webhook_id           BIGINT NOT NULL,
    event_id             TEXT NOT NULL,
    status               TEXT NOT NULL CONSTRAINT deliveries_status_check CHECK (status IN ('pending', 'parked', 'succeeded', 'failed', 'cancelled')),
    attempt_count        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    claimed_by           TEXT,
    claimed_until        TIMESTAMPTZ,
    last_status_code     INTEGER,
    last_error           TEXT,
    body                 TEXT,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    completed_at         TIMESTAMPTZ,
    event_type           TEXT NOT NULL,
    ordering_key         TEXT
) WITH (fillfactor = 50);
ALTER SEQUENCE deliveries_id_seq OWNED BY deliveries.id;
INSERT INTO deliveries SELECT id, tenant_id, webhook_id, event_id, status, attempt_count, next_attempt_at,
    claimed_by, claimed_until, last_status_code, last_error, body, created_at, updated_at, completed_at,
    event_type, ordering_key FROM deliveries_partitioned;
DROP TABLE deliveries_partitioned;
DROP FUNCTION add_delivery_day(DATE);

CREATE INDEX deliveries_webhook_log_idx ON deliveries (webhook_id, id DESC);
CREATE INDEX deliveries_parked_idx ON deliveries (webhook_id) WHERE status = 'parked';
CREATE INDEX deliveries_event_id_idx ON deliveries (event_id);
CREATE INDEX deliveries_webhook_status_log_idx ON deliveries (webhook_id, status, id DESC);
CREATE INDEX deliveries_webhook_type_log_idx ON deliveries (webhook_id, event_type, id DESC);
CREATE INDEX deliveries_due_by_webhook_idx ON deliveries (webhook_id, next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_ordering_idx ON deliveries (webhook_id, ordering_key, id)
    WHERE status = 'pending' AND ordering_key IS NOT NULL;
CREATE TRIGGER deliveries_event_type
    BEFORE INSERT ON deliveries
    FOR EACH ROW WHEN (NEW.event_type IS NULL)
    EXECUTE FUNCTION deliveries_event_type();

-- The failed attempts' event types as migration `tenant_aggregate_reads` read them.
CREATE OR REPLACE FUNCTION count_attempt_aggregates() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO webhook_latency_hours (webhook_id, hour, bucket, tenant_id, attempts)
    SELECT webhook_id, date_trunc('hour', started_at, 'UTC'), attempt_latency_bucket(duration_ms),
           min(tenant_id), count(*)
    FROM new_attempts
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3
    ON CONFLICT (webhook_id, hour, bucket) DO UPDATE
        SET attempts = webhook_latency_hours.attempts + EXCLUDED.attempts;
    INSERT INTO webhook_failure_hours (webhook_id, hour, event_type, tenant_id, failed)
    SELECT a.webhook_id, date_trunc('hour', a.started_at, 'UTC'), d.event_type, min(a.tenant_id), count(*)
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
