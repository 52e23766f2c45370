-- The whole data model of Hookboard: tenants and their staff, server-side sessions,
-- connections, the event catalog, webhooks, the event outbox with its deliveries and
-- attempts, API keys and the audit log. Every row of tenant data carries tenant_id.

CREATE TABLE tenants (
    id                   BIGSERIAL PRIMARY KEY,
    name                 TEXT NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    slug                 TEXT NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND char_length(slug) <= 63),
    plan                 TEXT NOT NULL DEFAULT 'starter' CHECK (plan IN ('starter', 'growth', 'scale')),
    timezone             TEXT NOT NULL DEFAULT 'UTC',
    webhooks_enabled     BOOLEAN NOT NULL DEFAULT FALSE,
    next_webhook_number  INTEGER NOT NULL DEFAULT 1,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id                   BIGSERIAL PRIMARY KEY,
    tenant_id            BIGINT REFERENCES tenants (id) ON DELETE CASCADE,
    email                TEXT NOT NULL CHECK (char_length(email) BETWEEN 3 AND 254),
    role                 TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'viewer', 'operator')),
    password_hash        TEXT NOT NULL,
    disabled             BOOLEAN NOT NULL DEFAULT FALSE,
    -- Login throttling: failures inside the current 15-minute window, and the lock.
    failed_logins        INTEGER NOT NULL DEFAULT 0,
    first_failed_at      TIMESTAMPTZ,
    locked_until         TIMESTAMPTZ,
    password_changed_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT operator_has_no_tenant CHECK ((role = 'operator') = (tenant_id IS NULL))
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
CREATE INDEX users_tenant_id_idx ON users (tenant_id);

-- Server-side sessions: the cookie holds a random key, the row holds its SHA-256, so a
-- stolen database does not yield live cookies. Deleting rows revokes sessions at once.
CREATE TABLE sessions (
    key_hash             TEXT PRIMARY KEY,
    user_id              BIGINT REFERENCES users (id) ON DELETE CASCADE,
    state                JSONB NOT NULL DEFAULT '{}',
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at           TIMESTAMPTZ NOT NULL
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);

CREATE TABLE connections (
    id                   BIGSERIAL PRIMARY KEY,
    tenant_id            BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name                 TEXT NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    external_id          TEXT NOT NULL CHECK (char_length(external_id) BETWEEN 1 AND 200),
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, external_id)
);

CREATE TABLE event_types (
    code                 TEXT PRIMARY KEY,
    category             TEXT NOT NULL,
    label                TEXT NOT NULL,
    description          TEXT NOT NULL,
    example_payload      JSONB NOT NULL,
    position             INTEGER NOT NULL UNIQUE
);

CREATE TABLE webhooks (
    id                          BIGSERIAL PRIMARY KEY,
    tenant_id                   BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    number                      INTEGER NOT NULL,
    url                         TEXT NOT NULL CHECK (char_length(url) <= 2048),
    description                 TEXT NOT NULL DEFAULT '',
    events                      TEXT[] NOT NULL CHECK (cardinality(events) >= 1),
    connection_id               BIGINT REFERENCES connections (id) ON DELETE RESTRICT,
    status                      TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'inactive', 'auto_disabled')),
    disabled_reason             TEXT,
    disabled_at                 TIMESTAMPTZ,
    api_key_enabled             BOOLEAN NOT NULL DEFAULT TRUE,
    api_key_hash                TEXT NOT NULL UNIQUE,
    api_key_prefix              TEXT NOT NULL,
    -- AEAD ciphertexts (nonce || ciphertext) of the signing secrets.
    secret_ciphertext           BYTEA NOT NULL,
    previous_secret_ciphertext  BYTEA,
    previous_secret_expires_at  TIMESTAMPTZ,
    headers                     JSONB NOT NULL DEFAULT '[]',
    retry_on_error              BOOLEAN NOT NULL DEFAULT TRUE,
    use_customer_language       BOOLEAN NOT NULL DEFAULT FALSE,
    capabilities                TEXT[] NOT NULL DEFAULT '{}',
    event_count                 BIGINT NOT NULL DEFAULT 0,
    error_count                 BIGINT NOT NULL DEFAULT 0,
    consecutive_failures        INTEGER NOT NULL DEFAULT 0,
    created_at                  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at                  TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, number)
);
CREATE INDEX webhooks_connection_id_idx ON webhooks (connection_id);
CREATE INDEX webhooks_events_idx ON webhooks USING GIN (events);

-- The outbox: an event and its deliveries are written in one transaction.
-- Ids are 'evt_' + a ULID, so they sort by time and `after=<id>` pages through them.
CREATE TABLE events (
    id                   TEXT PRIMARY KEY,
    tenant_id            BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    event_type           TEXT NOT NULL REFERENCES event_types (code),
    connection_id        BIGINT REFERENCES connections (id) ON DELETE SET NULL,
    language             TEXT,
    occurred_at          TIMESTAMPTZ NOT NULL,
    idempotency_key      TEXT,
    -- The exact envelope sent on the wire, byte-for-byte the same on every attempt.
    body                 TEXT NOT NULL,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX events_idempotency_key ON events (tenant_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX events_tenant_id_id_idx ON events (tenant_id, id);

CREATE TABLE deliveries (
    id                   BIGSERIAL PRIMARY KEY,
    tenant_id            BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    webhook_id           BIGINT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id             TEXT NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    status               TEXT NOT NULL CHECK (status IN ('pending', 'parked', 'succeeded', 'failed', 'cancelled')),
    attempt_count        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- The lease: a worker owns a claimed delivery until claimed_until; after that any
    -- worker may take it over.
    claimed_by           TEXT,
    claimed_until        TIMESTAMPTZ,
    last_status_code     INTEGER,
    last_error           TEXT,
    -- The body when it differs from the event's (capabilities, language); NULL otherwise.
    body                 TEXT,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at           TIMESTAMPTZ NOT NULL DEFAULT now(),
    completed_at         TIMESTAMPTZ
);
CREATE INDEX deliveries_due_idx ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_webhook_log_idx ON deliveries (webhook_id, id DESC);
CREATE INDEX deliveries_parked_idx ON deliveries (webhook_id) WHERE status = 'parked';
CREATE INDEX deliveries_event_id_idx ON deliveries (event_id);

CREATE TABLE delivery_attempts (
    id                   BIGSERIAL PRIMARY KEY,
    delivery_id          BIGINT NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    tenant_id            BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    webhook_id           BIGINT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
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
    response_body        BYTEA
);
CREATE INDEX delivery_attempts_delivery_id_idx ON delivery_attempts (delivery_id, attempt_number);
CREATE INDEX delivery_attempts_webhook_time_idx ON delivery_attempts (webhook_id, started_at);

CREATE TABLE api_keys (
    id                   BIGSERIAL PRIMARY KEY,
    tenant_id            BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name                 TEXT NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    -- The first characters of the key, shown so people can tell keys apart.
    prefix               TEXT NOT NULL,
    key_hash             TEXT NOT NULL UNIQUE,
    enabled              BOOLEAN NOT NULL DEFAULT TRUE,
    last_used_at         TIMESTAMPTZ,
    created_by           BIGINT REFERENCES users (id) ON DELETE SET NULL,
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX api_keys_tenant_id_idx ON api_keys (tenant_id);

CREATE TABLE audit_log (
    id                   BIGSERIAL PRIMARY KEY,
    tenant_id            BIGINT REFERENCES tenants (id) ON DELETE CASCADE,
    actor_user_id        BIGINT REFERENCES users (id) ON DELETE SET NULL,
    -- Who, as shown: an email, "API key <name>" or "system"; kept when the user is gone.
    actor                TEXT NOT NULL,
    action               TEXT NOT NULL,
    target_type          TEXT NOT NULL,
    target_id            TEXT,
    details              JSONB NOT NULL DEFAULT '{}',
    created_at           TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_tenant_idx ON audit_log (tenant_id, id DESC);
