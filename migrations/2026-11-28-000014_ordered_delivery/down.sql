DROP INDEX deliveries_ordering_idx;
ALTER TABLE deliveries DROP COLUMN ordering_key;
ALTER TABLE webhooks DROP COLUMN ordered;
ALTER TABLE events DROP COLUMN ordering_key;
