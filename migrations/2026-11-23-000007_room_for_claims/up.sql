-- A claim sets only claimed_by and claimed_until, which no index covers. With room left
-- on the row's page PostgreSQL writes the new version there and skips the indexes (a HOT
-- update); on a full page it adds an entry to every index of the table. Deliveries are
-- written once and claimed moments later, so leave that room in new pages.
ALTER TABLE deliveries SET (fillfactor = 50);
