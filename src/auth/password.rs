//! Password hashing: argon2id with m=19456 KiB, t=2, p=1 (OWASP's recommendation).
//! Hashing is slow on purpose: requests run these on the hashing threads
//! ([`crate::auth::hashing::run`]), never on the async or the blocking pool's threads.

use std::sync::LazyLock;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

pub const MIN_LENGTH: usize = 12;
pub const MAX_LENGTH: usize = 128;

fn hasher() -> Argon2<'static> {
    let params = Params::new(19_456, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Checks the length rule; the message is shown to the person choosing the password.
pub fn validate(password: &str) -> Result<(), String> {
    let length = password.chars().count();
    if length < MIN_LENGTH {
        Err(format!(
            "The password must have at least {MIN_LENGTH} characters (it has {length})."
        ))
    } else if length > MAX_LENGTH {
        Err(format!(
            "The password must have at most {MAX_LENGTH} characters (it has {length})."
        ))
    } else {
        Ok(())
    }
}

/// A PHC-format argon2id hash with a fresh random salt.
pub fn hash(password: &str) -> anyhow::Result<String> {
    hasher()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|err| anyhow::anyhow!("password hashing failed: {err}"))
}

/// Whether `password` matches `stored`. A malformed stored hash never matches.
pub fn verify(stored: &str, password: &str) -> bool {
    PasswordHash::new(stored)
        .is_ok_and(|parsed| hasher().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// A hash to verify against when the email is unknown, so the answer takes as long as
/// for a known one.
pub fn verify_dummy(password: &str) {
    static DUMMY: LazyLock<String> =
        LazyLock::new(|| hash("dummy password for timing").expect("hashing works"));
    let _ = verify(&DUMMY, password);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_with_the_spec_parameters() {
        let stored = hash("correct horse battery").unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{stored}");
        assert!(verify(&stored, "correct horse battery"));
        assert!(!verify(&stored, "wrong horse battery"));
        assert!(!verify("not a hash", "correct horse battery"));
    }

    #[test]
    fn length_limits_are_explained() {
        assert!(validate("short").unwrap_err().contains("at least 12"));
        assert!(validate(&"x".repeat(129)).unwrap_err().contains("at most 128"));
        assert!(validate("twelve chars").is_ok());
    }
}
