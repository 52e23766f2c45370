DELETE FROM event_types;
