-- Two foreign keys checked on every published event, each a lookup and a row lock per
-- row (with the attempt's, a fifth of the database's CPU in `make bench`), that guard
-- nothing the writers do not already guarantee:
-- * an event's type: publishing checks it against the catalog itself, and catalog entries
--   are only ever added;
-- * a delivery's event: the two are written in one transaction (the outbox), resending
--   reuses the delivery, and events are deleted only by the retention clean-up once no
--   delivery refers to them (a tenant's deletion reaches deliveries through its webhooks).
ALTER TABLE events DROP CONSTRAINT events_event_type_fkey;
ALTER TABLE deliveries DROP CONSTRAINT deliveries_event_id_fkey;
