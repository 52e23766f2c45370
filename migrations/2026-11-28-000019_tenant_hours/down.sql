DROP INDEX webhook_hours_hour_idx;
DROP TABLE tenant_hours_rolled;
DROP TABLE tenant_hours;
