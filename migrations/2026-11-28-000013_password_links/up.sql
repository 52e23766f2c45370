-- One-time set-password links: how a user an operator creates (or resets) chooses their
-- own password, so the operator never knows it. Only the SHA-256 of the token is stored.
CREATE TABLE password_links (
    id BIGSERIAL PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    used_at TIMESTAMPTZ NULL,
    created_by_user_id BIGINT NULL REFERENCES users (id) ON DELETE SET NULL
);

CREATE INDEX password_links_user_id ON password_links (user_id);
