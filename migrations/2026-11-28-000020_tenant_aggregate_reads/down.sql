ALTER TABLE tenant_hours RESET (autovacuum_vacuum_insert_threshold, autovacuum_vacuum_insert_scale_factor);
ALTER TABLE tenant_hours
    DROP CONSTRAINT tenant_hours_pkey,
    ADD CONSTRAINT tenant_hours_pkey PRIMARY KEY (tenant_id, hour);

CREATE OR REPLACE FUNCTION count_attempt_hours() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO webhook_hours (webhook_id, hour, succeeded, failed)
    SELECT webhook_id, date_trunc('hour', started_at, 'UTC'),
           count(*) FILTER (WHERE succeeded), count(*) FILTER (WHERE NOT succeeded)
    FROM new_attempts
    GROUP BY 1, 2
    ORDER BY 1, 2
    ON CONFLICT (webhook_id, hour) DO UPDATE
        SET succeeded = webhook_hours.succeeded + EXCLUDED.succeeded,
            failed = webhook_hours.failed + EXCLUDED.failed;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION count_attempt_aggregates() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO webhook_latency_hours (webhook_id, hour, bucket, attempts)
    SELECT webhook_id, date_trunc('hour', started_at, 'UTC'), attempt_latency_bucket(duration_ms), count(*)
    FROM new_attempts
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3
    ON CONFLICT (webhook_id, hour, bucket) DO UPDATE
        SET attempts = webhook_latency_hours.attempts + EXCLUDED.attempts;
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

DROP INDEX webhook_failure_hours_tenant_idx;
DROP INDEX webhook_latency_hours_tenant_idx;
DROP INDEX webhook_hours_tenant_idx;
ALTER TABLE webhook_failure_hours DROP COLUMN tenant_id;
ALTER TABLE webhook_latency_hours DROP COLUMN tenant_id;
ALTER TABLE webhook_hours DROP COLUMN tenant_id;
