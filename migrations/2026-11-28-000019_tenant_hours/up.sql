-- Attempts per tenant and hour, rolled up from `webhook_hours` by the worker's
-- housekeeping once an hour is over (`models::hourly::roll_up`). The dashboard of a
-- tenant's staff reads its 7-day chart from here: one row an hour, where the webhooks'
-- rows are one an hour for each webhook (16,800 rows a week at 100 webhooks).
CREATE TABLE tenant_hours (
    tenant_id BIGINT      NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    hour      TIMESTAMPTZ NOT NULL,
    succeeded BIGINT      NOT NULL,
    failed    BIGINT      NOT NULL,
    PRIMARY KEY (tenant_id, hour)
);

-- The hours before `until` are in `tenant_hours`; later ones only in `webhook_hours`.
-- One row, moved forward with the rows it covers, in the same transaction.
CREATE TABLE tenant_hours_rolled (
    only_row BOOLEAN     PRIMARY KEY DEFAULT TRUE CHECK (only_row),
    until    TIMESTAMPTZ NOT NULL
);
INSERT INTO tenant_hours_rolled (until) VALUES ('-infinity');

-- The roll-up and the retention pick the webhooks' rows by hour.
CREATE INDEX webhook_hours_hour_idx ON webhook_hours (hour);
