DROP TRIGGER delivery_attempts_count_aggregates ON delivery_attempts;
DROP FUNCTION count_attempt_aggregates();
DROP FUNCTION attempt_latency_bucket(INT);
DROP TABLE webhook_failure_hours;
DROP TABLE webhook_latency_hours;
