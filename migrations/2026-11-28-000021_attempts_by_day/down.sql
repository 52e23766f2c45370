ALTER TABLE delivery_attempts RENAME TO delivery_attempts_partitioned;
ALTER INDEX delivery_attempts_pkey RENAME TO delivery_attempts_partitioned_pkey;
ALTER INDEX delivery_attempts_delivery_id_idx RENAME TO delivery_attempts_partitioned_delivery_id_idx;
DROP TRIGGER delivery_attempts_count_hours ON delivery_attempts_partitioned;
DROP TRIGGER delivery_attempts_count_aggregates ON delivery_attempts_partitioned;

CREATE TABLE delivery_attempts (
    id                   BIGINT PRIMARY KEY DEFAULT nextval('delivery_attempts_id_seq'),
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
    response_body        BYTEA
);
ALTER SEQUENCE delivery_attempts_id_seq OWNED BY delivery_attempts.id;
CREATE INDEX delivery_attempts_delivery_id_idx ON delivery_attempts (delivery_id, attempt_number);
CREATE INDEX delivery_attempts_started_at_idx ON delivery_attempts (started_at);
INSERT INTO delivery_attempts SELECT id, delivery_id, tenant_id, webhook_id, attempt_number, started_at,
    duration_ms, status_code, succeeded, error_class, error_message, request_headers, response_headers,
    response_body FROM delivery_attempts_partitioned;
DROP TABLE delivery_attempts_partitioned;
DROP FUNCTION add_attempt_day(DATE);

CREATE TRIGGER delivery_attempts_count_hours
    AFTER INSERT ON delivery_attempts
    REFERENCING NEW TABLE AS new_attempts
    FOR EACH STATEMENT EXECUTE FUNCTION count_attempt_hours();
CREATE TRIGGER delivery_attempts_count_aggregates
    AFTER INSERT ON delivery_attempts
    REFERENCING NEW TABLE AS new_attempts
    FOR EACH STATEMENT EXECUTE FUNCTION count_attempt_aggregates();
