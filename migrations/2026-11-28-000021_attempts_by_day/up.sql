-- Delivery attempts by day: a partition for each UTC day of `started_at`, so that the
-- retention drops a day past it whole (milliseconds, and the disk space goes back to the
-- system) instead of deleting its rows one by one (seconds, and the space stays with the
-- table). A DEFAULT partition takes what no day holds (a clock far off, a day the
-- housekeeping has not added yet), so no attempt is ever refused; it is normally empty, and
-- the retention deletes from it by rows.
--
-- The deliveries stay one table: the worker claims and finishes them by id, and the earlier
-- trial of partitioning them (README, Performance) cost the delivery rate two thirds over a
-- month of partitions.

-- Adds the partition of one day, unless it is there (false then, also when another
-- process added it at the same time). The housekeeping calls it for the days ahead; the
-- table is created apart and attached, which locks the parent only against other changes
-- of its partitions (SHARE UPDATE EXCLUSIVE), not against writers.
CREATE FUNCTION add_attempt_day(day DATE) RETURNS BOOLEAN LANGUAGE plpgsql AS $$
DECLARE
    name TEXT := 'delivery_attempts_' || to_char(day, 'YYYY_MM_DD');
BEGIN
    IF to_regclass(name) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE delivery_attempts INCLUDING DEFAULTS)', name);
    EXECUTE format(
        'ALTER TABLE delivery_attempts ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
        name, day::timestamp AT TIME ZONE 'UTC', (day + 1)::timestamp AT TIME ZONE 'UTC');
    RETURN true;
EXCEPTION WHEN duplicate_table OR unique_violation THEN
    RETURN false;
END
$$;

ALTER TABLE delivery_attempts RENAME TO delivery_attempts_unpartitioned;
ALTER INDEX delivery_attempts_pkey RENAME TO delivery_attempts_unpartitioned_pkey;
ALTER INDEX delivery_attempts_delivery_id_idx RENAME TO delivery_attempts_unpartitioned_delivery_id_idx;
DROP TRIGGER delivery_attempts_count_hours ON delivery_attempts_unpartitioned;
DROP TRIGGER delivery_attempts_count_aggregates ON delivery_attempts_unpartitioned;

CREATE TABLE delivery_attempts (
    id                   BIGINT NOT NULL DEFAULT nextval('delivery_attempts_id_seq'),
    delivery_id          BIGINT NOT NULL,
    tenant_id            BIGINT NOT NULL,
    webhook_id           BIGINT NOT NULL,
    attempt_number       INTEGER NOT NULL,
    started_at           TIMESTAMPTZ NOT NULL,
    duration_ms          INTEGER NOT NULL,
    status_code          INTEGER,
    succeeded            BOOLEAN NOT NULL,
    error_class          TEXT,
    error_message        TEXT,
    request_headers      JSONB NOT NULL DEFAULT '{}',
    response_headers     JSONB NOT NULL DEFAULT '{}',
    -- At most the first 64 KiB of the response, never decompressed.
    response_body        BYTEA,
    -- A unique key of a partitioned table holds its partition key; the ids come from one
    -- sequence all the same.
    PRIMARY KEY (id, started_at)
) PARTITION BY RANGE (started_at);
ALTER SEQUENCE delivery_attempts_id_seq OWNED BY delivery_attempts.id;
CREATE INDEX delivery_attempts_delivery_id_idx ON delivery_attempts (delivery_id, attempt_number);
-- No index on `started_at` any more: the retention finds a day by its partition.
CREATE TABLE delivery_attempts_default PARTITION OF delivery_attempts DEFAULT;

-- The days the attempts kept so far started on (those of the last 400 days: anything older
-- waits in the DEFAULT partition for the retention), and today and the week ahead.
SELECT add_attempt_day(day)
FROM (
    SELECT DISTINCT (started_at AT TIME ZONE 'UTC')::date AS day
    FROM delivery_attempts_unpartitioned
    WHERE started_at >= now() - interval '400 days'
    UNION
    SELECT ((now() AT TIME ZONE 'UTC') + ahead * interval '1 day')::date
    FROM generate_series(0, 7) AS ahead
) AS days
ORDER BY day;

INSERT INTO delivery_attempts (id, delivery_id, tenant_id, webhook_id, attempt_number, started_at, duration_ms,
                               status_code, succeeded, error_class, error_message, request_headers,
                               response_headers, response_body)
SELECT id, delivery_id, tenant_id, webhook_id, attempt_number, started_at, duration_ms,
       status_code, succeeded, error_class, error_message, request_headers,
       response_headers, response_body
FROM delivery_attempts_unpartitioned;
DROP TABLE delivery_attempts_unpartitioned;

-- The hourly aggregates' triggers, as before (migrations webhook_hours and
-- dashboard_aggregates), added after the copy so that it counts nothing twice. On a
-- partitioned table a statement's transition table holds the rows of every partition.
CREATE TRIGGER delivery_attempts_count_hours
    AFTER INSERT ON delivery_attempts
    REFERENCING NEW TABLE AS new_attempts
    FOR EACH STATEMENT EXECUTE FUNCTION count_attempt_hours();
CREATE TRIGGER delivery_attempts_count_aggregates
    AFTER INSERT ON delivery_attempts
    REFERENCING NEW TABLE AS new_attempts
    FOR EACH STATEMENT EXECUTE FUNCTION count_attempt_aggregates();
