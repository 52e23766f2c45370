CREATE INDEX deliveries_due_idx ON deliveries (next_attempt_at) WHERE status = 'pending';
DROP INDEX deliveries_due_by_webhook_idx;
