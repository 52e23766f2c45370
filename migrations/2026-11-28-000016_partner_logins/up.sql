-- Partner logins (SPEC 9e): a login of a tenant bound to one of its connections, which
-- sees and manages only that connection's webhooks.
ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check
    CHECK (role IN ('owner', 'admin', 'viewer', 'partner', 'operator'));
ALTER TABLE users ADD COLUMN connection_id BIGINT REFERENCES connections (id) ON DELETE RESTRICT;
ALTER TABLE users ADD CONSTRAINT partner_has_a_connection
    CHECK ((role = 'partner') = (connection_id IS NOT NULL));
CREATE INDEX users_connection_id_idx ON users (connection_id) WHERE connection_id IS NOT NULL;
