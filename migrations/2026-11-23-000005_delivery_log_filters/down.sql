DROP INDEX deliveries_webhook_type_log_idx;
DROP INDEX deliveries_webhook_status_log_idx;
DROP TRIGGER deliveries_event_type ON deliveries;
DROP FUNCTION deliveries_event_type();
ALTER TABLE deliveries DROP COLUMN event_type;
