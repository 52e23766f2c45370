ALTER TABLE webhooks DROP COLUMN filter_last_error_at;
ALTER TABLE webhooks DROP COLUMN filter_last_error;
ALTER TABLE webhooks DROP COLUMN filter_error_count;
ALTER TABLE webhooks DROP COLUMN filtered_count;
ALTER TABLE webhooks DROP COLUMN filter;
