-- Payload filters (SPEC 9d). A webhook may have a CEL filter; an event gets a delivery for
-- it only where the filter is true. Publishing counts, per webhook and in the statement
-- that already adds to event_count, the events a filter skipped and those it failed on
-- (which count as false), and keeps the last failure for the webhook page.
ALTER TABLE webhooks ADD COLUMN filter TEXT
    CHECK (char_length(filter) BETWEEN 1 AND 2000);
ALTER TABLE webhooks ADD COLUMN filtered_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE webhooks ADD COLUMN filter_error_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE webhooks ADD COLUMN filter_last_error TEXT;
ALTER TABLE webhooks ADD COLUMN filter_last_error_at TIMESTAMPTZ;
