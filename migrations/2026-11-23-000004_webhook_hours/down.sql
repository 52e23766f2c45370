DROP TRIGGER delivery_attempts_count_hours ON delivery_attempts;
DROP FUNCTION count_attempt_hours();
DROP TABLE webhook_hours;
