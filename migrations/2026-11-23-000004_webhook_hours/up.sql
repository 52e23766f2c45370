-- Attempts per webhook and hour, for the webhook page's 24-hour health chart: kept up to
-- date by a statement-level trigger, so the page reads 24 rows instead of aggregating
-- every attempt of the last day (tens of thousands for a busy webhook).
CREATE TABLE webhook_hours (
    webhook_id BIGINT      NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    hour       TIMESTAMPTZ NOT NULL,
    succeeded  BIGINT      NOT NULL DEFAULT 0,
    failed     BIGINT      NOT NULL DEFAULT 0,
    PRIMARY KEY (webhook_id, hour)
);

CREATE FUNCTION count_attempt_hours() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- In key order, so concurrent writers lock the same rows in the same order.
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

CREATE TRIGGER delivery_attempts_count_hours
    AFTER INSERT ON delivery_attempts
    REFERENCING NEW TABLE AS new_attempts
    FOR EACH STATEMENT EXECUTE FUNCTION count_attempt_hours();

INSERT INTO webhook_hours (webhook_id, hour, succeeded, failed)
SELECT webhook_id, date_trunc('hour', started_at, 'UTC'),
       count(*) FILTER (WHERE succeeded), count(*) FILTER (WHERE NOT succeeded)
FROM delivery_attempts
GROUP BY 1, 2;
