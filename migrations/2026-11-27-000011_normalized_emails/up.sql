-- Emails are stored in one spelling: Unicode NFC, lowercased (the app's normalize_email),
-- so `josé` typed precomposed or decomposed, in any case, is one account. The server may
-- run with the C locale, whose lower() only folds ASCII: ICU's root collation lowercases
-- all of Unicode where the server has ICU. An address whose normalized spelling another
-- account already has is left as it is, for an operator to resolve: merging accounts is
-- not a migration's call.
DO $$
DECLARE
    folded TEXT := CASE
        WHEN EXISTS (SELECT 1 FROM pg_collation WHERE collname = 'und-x-icu')
            THEN 'normalize(lower(normalize(email, NFC) COLLATE "und-x-icu"), NFC)'
        ELSE 'normalize(lower(normalize(email, NFC)), NFC)'
    END;
BEGIN
    EXECUTE format(
        'WITH spelled AS (SELECT id, %s AS normalized FROM users),
              unique_spelling AS (
                  SELECT normalized FROM spelled GROUP BY normalized HAVING count(*) = 1)
         UPDATE users SET email = spelled.normalized
           FROM spelled JOIN unique_spelling USING (normalized)
          WHERE users.id = spelled.id AND users.email <> spelled.normalized',
        folded);
END
$$;
