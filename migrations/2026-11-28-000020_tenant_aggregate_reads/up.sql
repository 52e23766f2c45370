-- The dashboard of a tenant's staff sums the hours of all the tenant's webhooks. With the
-- tenant on each row of the hourly aggregates, that is one range of one index however many
-- webhooks the tenant has; it was one probe of each webhook's key (61 probes a read in
-- `make bench`, one btree level deeper over a month of history). A partner's dashboard
-- (some of the tenant's webhooks) still probes its webhooks' keys.
ALTER TABLE webhook_hours ADD COLUMN tenant_id BIGINT;
ALTER TABLE webhook_latency_hours ADD COLUMN tenant_id BIGINT;
ALTER TABLE webhook_failure_hours ADD COLUMN tenant_id BIGINT;

UPDATE webhook_hours h SET tenant_id = w.tenant_id FROM webhooks w WHERE w.id = h.webhook_id;
UPDATE webhook_latency_hours h SET tenant_id = w.tenant_id FROM webhooks w WHERE w.id = h.webhook_id;
UPDATE webhook_failure_hours h SET tenant_id = w.tenant_id FROM webhooks w WHERE w.id = h.webhook_id;

ALTER TABLE webhook_hours ALTER COLUMN tenant_id SET NOT NULL;
ALTER TABLE webhook_latency_hours ALTER COLUMN tenant_id SET NOT NULL;
ALTER TABLE webhook_failure_hours ALTER COLUMN tenant_id SET NOT NULL;

-- The counts are in no index, so adding to an hour's row stays an update in place.
CREATE INDEX webhook_hours_tenant_idx ON webhook_hours (tenant_id, hour);
CREATE INDEX webhook_latency_hours_tenant_idx ON webhook_latency_hours (tenant_id, hour);
CREATE INDEX webhook_failure_hours_tenant_idx ON webhook_failure_hours (tenant_id, hour);

-- The attempts carry their tenant (a webhook never changes tenant).
CREATE OR REPLACE FUNCTION count_attempt_hours() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO webhook_hours (webhook_id, hour, tenant_id, succeeded, failed)
    SELECT webhook_id, date_trunc('hour', started_at, 'UTC'), min(tenant_id),
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

-- A tenant's week is 168 rows of `tenant_hours`, and the roll-up writes every tenant's
-- hour together, so each of them is on a page of its own: 134 pages read for a week in
-- `make bench`. With the sums in the key's index, the week is read from the index alone
-- (an index-only scan: the pages must be marked all-visible, so the table, a few rows an
-- hour, is vacuumed after every 100 new rows rather than when a fifth of it is new).
ALTER TABLE tenant_hours
    DROP CONSTRAINT tenant_hours_pkey,
    ADD CONSTRAINT tenant_hours_pkey PRIMARY KEY (tenant_id, hour) INCLUDE (succeeded, failed);
ALTER TABLE tenant_hours SET (
    autovacuum_vacuum_insert_threshold = 100,
    autovacuum_vacuum_insert_scale_factor = 0
);
