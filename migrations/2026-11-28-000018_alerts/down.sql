DELETE FROM deliveries WHERE event_type LIKE 'hookboard.%';
DELETE FROM events WHERE event_type LIKE 'hookboard.%';
UPDATE webhooks SET events = array(SELECT e FROM unnest(events) AS e WHERE e NOT LIKE 'hookboard.%')
    WHERE events && ARRAY['hookboard.webhook.failing', 'hookboard.webhook.disabled', 'hookboard.webhook.recovered'];
DELETE FROM event_types WHERE category = 'Hookboard';
DROP TABLE alerts;
ALTER TABLE users DROP COLUMN alerts_seen_id;
ALTER TABLE webhooks DROP COLUMN alert_state;
ALTER TABLE webhooks DROP COLUMN failing_attempts;
ALTER TABLE tenants DROP COLUMN alert_emails;
