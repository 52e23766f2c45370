CREATE OR REPLACE FUNCTION add_delivery_day(day DATE) RETURNS BOOLEAN LANGUAGE plpgsql AS $$
DECLARE
    name TEXT := 'deliveries_' || to_char(day, 'YYYY_MM_DD');
BEGIN
    IF to_regclass(name) IS NOT NULL THEN
        RETURN false;
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE deliveries INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', name);
    EXECUTE format('CREATE INDEX %I ON %I (id)', name || '_id_idx', name);
    EXECUTE format('ALTER TABLE deliveries ATTACH PARTITION %I FOR VALUES IN (%L)', name, day);
    RETURN true;
EXCEPTION WHEN duplicate_table OR unique_violation THEN
    RETURN false;
END
$$;

DO $$
DECLARE
    part TEXT;
BEGIN
    FOR part IN
        SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'deliveries'::regclass AND c.relname <> 'deliveries_waiting'
    LOOP
        EXECUTE format('DROP INDEX IF EXISTS %I', part || '_id_idx');
        EXECUTE format('CREATE INDEX %I ON %I (id)', part || '_id_idx', part);
    END LOOP;
END
$$;
