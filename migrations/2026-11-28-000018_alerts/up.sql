-- Alerts (SPEC 9a): a webhook's change of state (failing, switched off automatically,
-- recovered) is written by the delivery worker in the transaction that records the
-- attempts that caused it, once per change (`webhooks.alert_state`). Each alert is then,
-- durably and at its own pace, published as an operational event through the outbox
-- (`published_at`) and mailed to the tenant's recipients (`mail_due_at` .. `mailed_at`),
-- and shown under the bell of the dashboard (`users.alerts_seen_id`).
ALTER TABLE tenants ADD COLUMN alert_emails TEXT[] NOT NULL DEFAULT '{}'
    CHECK (cardinality(alert_emails) <= 20);
ALTER TABLE webhooks ADD COLUMN alert_state TEXT NOT NULL DEFAULT 'ok'
    CHECK (alert_state IN ('ok', 'failing', 'disabled'));
-- Failed attempts (not deliveries) since the last success: 3 make a webhook "failing".
ALTER TABLE webhooks ADD COLUMN failing_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN alerts_seen_id BIGINT NOT NULL DEFAULT 0;

CREATE TABLE alerts (
    id                   BIGSERIAL PRIMARY KEY,
    tenant_id            BIGINT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    webhook_id           BIGINT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    -- The webhook as it was: the alert reads the same after the webhook changes.
    webhook_number       INTEGER NOT NULL,
    url                  TEXT NOT NULL,
    connection_id        BIGINT,
    kind                 TEXT NOT NULL CHECK (kind IN ('failing', 'disabled', 'recovered')),
    reason               TEXT NOT NULL,
    consecutive_failures INTEGER NOT NULL,
    created_at           TIMESTAMPTZ NOT NULL,
    published_at         TIMESTAMPTZ,
    mail_due_at          TIMESTAMPTZ,
    mail_claimed_until   TIMESTAMPTZ,
    mail_attempts        INTEGER NOT NULL DEFAULT 0,
    mail_error           TEXT,
    mailed_at            TIMESTAMPTZ
);
CREATE INDEX alerts_unpublished_idx ON alerts (id) WHERE published_at IS NULL;
CREATE INDEX alerts_mail_due_idx ON alerts (mail_due_at) WHERE mail_due_at IS NOT NULL;
CREATE INDEX alerts_tenant_idx ON alerts (tenant_id, id DESC);
CREATE INDEX alerts_webhook_idx ON alerts (webhook_id);

-- Operational events: any webhook may subscribe to them; none gets one about itself.
INSERT INTO event_types (code, category, label, description, example_payload, position) VALUES
('hookboard.webhook.failing', 'Hookboard', 'Webhook Failing',
 'Sent when the deliveries of one of your webhooks have failed 3 times in a row. Hookboard keeps retrying; act before it switches the webhook off.',
 $json${
  "webhook": {"id": 42, "number": 3, "url": "https://crm.example.com/hooks/bookings"},
  "reason": "HTTP 503 from the endpoint",
  "consecutive_failures": 3,
  "at": "2026-11-28T02:14:05Z"
}$json$::jsonb, 33),
('hookboard.webhook.disabled', 'Hookboard', 'Webhook Disabled',
 'Sent when Hookboard switched one of your webhooks off automatically (all retries failed, 11 failures in a row without retries, or 410 Gone). New events are parked until someone switches it on.',
 $json${
  "webhook": {"id": 42, "number": 3, "url": "https://crm.example.com/hooks/bookings"},
  "reason": "All 10 retries of a delivery failed",
  "consecutive_failures": 11,
  "at": "2026-11-28T10:31:40Z"
}$json$::jsonb, 34),
('hookboard.webhook.recovered', 'Hookboard', 'Webhook Recovered',
 'Sent when a webhook that was failing, or was switched back on, delivers successfully again.',
 $json${
  "webhook": {"id": 42, "number": 3, "url": "https://crm.example.com/hooks/bookings"},
  "reason": "A delivery succeeded",
  "consecutive_failures": 0,
  "at": "2026-11-28T11:02:13Z"
}$json$::jsonb, 35);
