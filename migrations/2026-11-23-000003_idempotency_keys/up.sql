-- The first answer to an API POST sent with an `Idempotency-Key` header, kept 24 hours, so
-- a client that retries after a timeout gets the same answer instead of a second effect.
CREATE TABLE idempotency_keys (
    tenant_id            BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    key                  TEXT NOT NULL CHECK (char_length(key) BETWEEN 1 AND 200),
    -- SHA-256 of method, path and body: the same key with another request is refused.
    request_hash         TEXT NOT NULL,
    status               INTEGER NOT NULL,
    body                 TEXT NOT NULL,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, key)
);
CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);
