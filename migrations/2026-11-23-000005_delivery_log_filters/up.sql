-- Filtering a webhook's delivery log by outcome or event type must not scan the whole
-- log (a busy webhook has a million deliveries): the event type is copied onto each
-- delivery (it never changes) and both filters get an index in log order.
ALTER TABLE deliveries ADD COLUMN event_type TEXT;
UPDATE deliveries d SET event_type = e.event_type FROM events e WHERE e.id = d.event_id;
ALTER TABLE deliveries ALTER COLUMN event_type SET NOT NULL;

-- Writers that do not name it get it from the event.
CREATE FUNCTION deliveries_event_type() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.event_type := (SELECT event_type FROM events WHERE id = NEW.event_id);
    RETURN NEW;
END
$$;

CREATE TRIGGER deliveries_event_type
    BEFORE INSERT ON deliveries
    FOR EACH ROW WHEN (NEW.event_type IS NULL)
    EXECUTE FUNCTION deliveries_event_type();

CREATE INDEX deliveries_webhook_status_log_idx ON deliveries (webhook_id, status, id DESC);
CREATE INDEX deliveries_webhook_type_log_idx ON deliveries (webhook_id, event_type, id DESC);
