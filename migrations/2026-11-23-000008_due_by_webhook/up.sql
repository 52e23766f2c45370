-- The claim lets webhooks with due deliveries take turns: it steps from webhook to webhook
-- down this index, then reads each one's oldest due deliveries. Read in due order across
-- all webhooks (the index it replaces), a long backlog of one webhook hid every other
-- webhook's deliveries until it drained.
CREATE INDEX deliveries_due_by_webhook_idx ON deliveries (webhook_id, next_attempt_at) WHERE status = 'pending';
DROP INDEX deliveries_due_idx;
