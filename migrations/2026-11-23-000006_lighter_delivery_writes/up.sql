-- Every delivery attempt and every delivery is written under load; each foreign key costs
-- a lookup per row. The attempt's tenant and webhook, and the delivery's tenant, are copies
-- the writers take from the delivery (and its webhook) itself: integrity and cascades
-- already follow from delivery_attempts.delivery_id -> deliveries and deliveries.webhook_id
-- -> webhooks -> tenants. The profile of `make bench` showed these checks at about a tenth
-- of the database's CPU.
ALTER TABLE delivery_attempts
    DROP CONSTRAINT delivery_attempts_tenant_id_fkey,
    DROP CONSTRAINT delivery_attempts_webhook_id_fkey;
ALTER TABLE deliveries DROP CONSTRAINT deliveries_tenant_id_fkey;

-- Nothing reads attempts by webhook and time any more (the health chart has its hourly
-- roll-up); the retention clean-up reads them by time alone.
DROP INDEX delivery_attempts_webhook_time_idx;
CREATE INDEX delivery_attempts_started_at_idx ON delivery_attempts (started_at);
