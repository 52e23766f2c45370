DELETE FROM users WHERE role = 'partner';
DROP INDEX users_connection_id_idx;
ALTER TABLE users DROP CONSTRAINT partner_has_a_connection;
ALTER TABLE users DROP COLUMN connection_id;
ALTER TABLE users DROP CONSTRAINT users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check
    CHECK (role IN ('owner', 'admin', 'viewer', 'operator'));
