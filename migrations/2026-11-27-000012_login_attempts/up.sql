-- A per-account sequence of password attempts, claimed or refused. A check that matched
-- clears the throttle only if the account is not paused by attempts that came after it,
-- so a burst of guesses cannot carry the right password through while it pauses the
-- account.
ALTER TABLE users ADD COLUMN login_attempts BIGINT NOT NULL DEFAULT 0;
