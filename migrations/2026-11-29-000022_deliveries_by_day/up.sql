-- Deliveries by the day they finished: the deliveries still to send (pending or parked) live
-- in one partition, `deliveries_waiting`, and a delivery that finishes (succeeded, failed or
-- cancelled) moves, in the statement that finishes it, to the partition of the UTC day it
-- finished on. The retention then drops a day past it whole, giving its disk space back to
-- the system, as it does for the attempts (migration `attempts_by_day`).
--
-- The worker claims, renews and finishes deliveries in the waiting partition alone, which
-- holds only what is still to send, so its statements never plan or lock the history's
-- partitions (the trial by id range, README, Performance, planned every claim over all of
-- them). A day's partition is written once, when its deliveries finish, and is packed full
-- (the waiting partition keeps the free room on each page that claims need, migration
-- `room_for_claims`). A DEFAULT partition takes a delivery finished on a day not added (a
-- clock far off), so none is ever refused.
--
-- `done_on` is 'infinity' while a delivery waits, and the CHECK below holds it to the
-- status: a statement that finished a delivery without naming its day fails, and never
-- leaves history in the waiting partition.

-- Adds the partition of one day, unless it is there (false then, also when another process
-- added it at the same time), as `add_attempt_day` does for the attempts.
CREATE FUNCTION add_delivery_day(day DATE) RETURNS BOOLEAN LANGUAGE plpgsql AS $$
DECLARE
    name TEXT := 'deliveries_' || to_char(day, 'YYYY_MM_DD');
BEGIN
    IF to_regclass(name) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE deliveries INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', name);
    -- Each partition's own index on `id` (see the table below).
    EXECUTE format('CREATE INDEX %I ON %I (id)', name || '_id_idx', name);
    EXECUTE format('ALTER TABLE deliveries ATTACH PARTITION %I FOR VALUES IN (%L)', name, day);
    RETURN true;
EXCEPTION WHEN duplicate_table OR unique_violation THEN
    RETURN false;
END
$$;

ALTER TABLE deliveries RENAME TO deliveries_unpartitioned;
ALTER INDEX deliveries_pkey RENAME TO deliveries_unpartitioned_pkey;
ALTER INDEX deliveries_webhook_log_idx RENAME TO deliveries_unpartitioned_webhook_log_idx;
ALTER INDEX deliveries_parked_idx RENAME TO deliveries_unpartitioned_parked_idx;
ALTER INDEX deliveries_event_id_idx RENAME TO deliveries_unpartitioned_event_id_idx;
ALTER INDEX deliveries_webhook_status_log_idx RENAME TO deliveries_unpartitioned_webhook_status_log_idx;
ALTER INDEX deliveries_webhook_type_log_idx RENAME TO deliveries_unpartitioned_webhook_type_log_idx;
ALTER INDEX deliveries_due_by_webhook_idx RENAME TO deliveries_unpartitioned_due_by_webhook_idx;
ALTER INDEX deliveries_ordering_idx RENAME TO deliveries_unpartitioned_ordering_idx;
DROP TRIGGER deliveries_event_type ON deliveries_unpartitioned;

CREATE TABLE deliveries (
    id                   BIGINT NOT NULL DEFAULT nextval('deliveries_id_seq'),
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
    ordering_key         TEXT,
    -- The UTC day it finished on; 'infinity' while it waits.
    done_on              DATE NOT NULL DEFAULT 'infinity',
    CONSTRAINT deliveries_done_on_check
        CHECK ((done_on = 'infinity') = (status IN ('pending', 'parked')))
) PARTITION BY LIST (done_on);
ALTER SEQUENCE deliveries_id_seq OWNED BY deliveries.id;
-- No primary key: one over the partitions would have to hold `done_on`, and then every
-- statement of the worker, which names `done_on = 'infinity'` to stay in the waiting
-- partition, could use that condition alone to walk the whole key. With one generic plan
-- a connection, made while the queue was nearly empty, the result statement did so: it read
-- every delivery the worker held and compared each with every result of the batch (30 ms a
-- batch instead of 7 in `make bench`). The ids come from one sequence, and each partition has
-- an index of its own on them (not one over the partitions, which would be a second index on
-- the waiting partition's ids beside its unique one below: one more entry a delivery).
CREATE INDEX deliveries_webhook_log_idx ON deliveries (webhook_id, id DESC);
CREATE INDEX deliveries_event_id_idx ON deliveries (event_id);
CREATE INDEX deliveries_webhook_status_log_idx ON deliveries (webhook_id, status, id DESC);
CREATE INDEX deliveries_webhook_type_log_idx ON deliveries (webhook_id, event_type, id DESC);

-- A queue: rows come in at its end and leave as they finish, so its last pages are often
-- empty, and a vacuum that gives them back takes the table's ACCESS EXCLUSIVE lock to do so,
-- which every claim, publish and result queues behind: `vacuum_truncate` off keeps those
-- pages for the next rows instead.
CREATE TABLE deliveries_waiting PARTITION OF deliveries FOR VALUES IN ('infinity')
    WITH (fillfactor = 50, vacuum_truncate = false);
-- What only waiting deliveries need, on the waiting partition alone: the claim's indexes
-- (migrations `due_by_webhook`, `ordered_delivery`) and the parked ones'.
CREATE INDEX deliveries_due_by_webhook_idx ON deliveries_waiting (webhook_id, next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX deliveries_ordering_idx ON deliveries_waiting (webhook_id, ordering_key, id)
    WHERE status = 'pending' AND ordering_key IS NOT NULL;
CREATE INDEX deliveries_parked_idx ON deliveries_waiting (webhook_id) WHERE status = 'parked';
-- Unique, as the key of one table was: the worker finds its deliveries by id, and to
-- statistics taken while the partition was empty (a queue drained, then analyzed) every
-- index looks as cheap as the plain one on `id`. A generic plan made then locked a claim's
-- 128 deliveries by walking (webhook_id, event_type, id) whole: 21,000 buffers and 83 ms
-- instead of 0.2 ms. Unique, the planner prefers it for `id = ANY(...)`; but it is no
-- guarantee on its own (a join, or an index-only scan, can still make another index's whole
-- walk look cheaper), which is why the worker also looks deliveries up by id alone, with
-- index-only scans off (`by_key` in `src/delivery/dispatcher/conn.rs`).
CREATE UNIQUE INDEX deliveries_waiting_id_key ON deliveries_waiting (id);
CREATE TABLE deliveries_default PARTITION OF deliveries DEFAULT;
CREATE INDEX deliveries_default_id_idx ON deliveries_default (id);

CREATE TRIGGER deliveries_event_type
    BEFORE INSERT ON deliveries
    FOR EACH ROW WHEN (NEW.event_type IS NULL)
    EXECUTE FUNCTION deliveries_event_type();

-- The days the deliveries kept so far finished on (those of the last 400 days: anything
-- older waits in the DEFAULT partition for the retention), and today and the week ahead.
SELECT add_delivery_day(day)
FROM (
    SELECT DISTINCT (COALESCE(completed_at, updated_at) AT TIME ZONE 'UTC')::date AS day
    FROM deliveries_unpartitioned
    WHERE status IN ('succeeded', 'failed', 'cancelled')
      AND COALESCE(completed_at, updated_at) >= now() - interval '400 days'
    UNION
    SELECT ((now() AT TIME ZONE 'UTC') + ahead * interval '1 day')::date
    FROM generate_series(0, 7) AS ahead
) AS days
ORDER BY day;

INSERT INTO deliveries (id, tenant_id, webhook_id, event_id, status, attempt_count, next_attempt_at,
                        claimed_by, claimed_until, last_status_code, last_error, body, created_at,
                        updated_at, completed_at, event_type, ordering_key, done_on)
SELECT id, tenant_id, webhook_id, event_id, status, attempt_count, next_attempt_at,
       claimed_by, claimed_until, last_status_code, last_error, body, created_at,
       updated_at, completed_at, event_type, ordering_key,
       CASE WHEN status IN ('pending', 'parked') THEN 'infinity'
            ELSE (COALESCE(completed_at, updated_at) AT TIME ZONE 'UTC')::date END
FROM deliveries_unpartitioned;
DROP TABLE deliveries_unpartitioned;

-- The failed attempts' event types (migration `dashboard_aggregates`), read from each
-- failed attempt's delivery by id: it is waiting for its retry, or it has just moved to
-- its day. A join of the attempts with `deliveries` is planned, among the dispatcher's
-- statements (whole-table scans off, one generic plan), as a walk of every partition's
-- index: 21 ms a batch of results with no failure at all, against 0.7 ms for the other
-- trigger. This way the lookups run only for failed attempts, and the waiting partition is
-- asked first.
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
    SELECT a.webhook_id, date_trunc('hour', a.started_at, 'UTC'), f.event_type, min(a.tenant_id), count(*)
    FROM new_attempts a
    CROSS JOIN LATERAL (
        SELECT COALESCE(
            (SELECT w.event_type FROM deliveries_waiting w WHERE w.id = a.delivery_id),
            (SELECT d.event_type FROM deliveries d WHERE d.id = a.delivery_id LIMIT 1)) AS event_type
    ) f
    WHERE NOT a.succeeded AND f.event_type IS NOT NULL
    GROUP BY 1, 2, 3
    ORDER BY 1, 2, 3
    ON CONFLICT (webhook_id, hour, event_type) DO UPDATE
        SET failed = webhook_failure_hours.failed + EXCLUDED.failed;
    RETURN NULL;
END
$$;
