DROP INDEX delivery_attempts_started_at_idx;
CREATE INDEX delivery_attempts_webhook_time_idx ON delivery_attempts (webhook_id, started_at);
ALTER TABLE deliveries
    ADD CONSTRAINT deliveries_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE;
ALTER TABLE delivery_attempts
    ADD CONSTRAINT delivery_attempts_tenant_id_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE,
    ADD CONSTRAINT delivery_attempts_webhook_id_fkey FOREIGN KEY (webhook_id) REFERENCES webhooks (id) ON DELETE CASCADE;
