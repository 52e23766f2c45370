-- Ordered delivery per key (SPEC 9b). An event may carry an ordering key; a webhook may be
-- `ordered`. A delivery carries the key only when its webhook was ordered when it was
-- written (or was switched to ordered while it waited): the claim keeps such deliveries of
-- one key to one at a time, in delivery id order, and leaves every other delivery alone.
ALTER TABLE events ADD COLUMN ordering_key TEXT
    CHECK (char_length(ordering_key) BETWEEN 1 AND 200);
ALTER TABLE webhooks ADD COLUMN ordered BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE deliveries ADD COLUMN ordering_key TEXT;

-- The claim's question for an ordered delivery: is an earlier delivery of this webhook and
-- key still waiting, or one of them being sent? Also the page's count of keys held back.
CREATE INDEX deliveries_ordering_idx ON deliveries (webhook_id, ordering_key, id)
    WHERE status = 'pending' AND ordering_key IS NOT NULL;
