ALTER TABLE events ADD CONSTRAINT events_event_type_fkey FOREIGN KEY (event_type) REFERENCES event_types (code);
ALTER TABLE deliveries ADD CONSTRAINT deliveries_event_id_fkey FOREIGN KEY (event_id) REFERENCES events (id) ON DELETE CASCADE;
