//! Password hashing: argon2id with m=19456 KiB, t=2, p=1 (OWASP's recommendation).
//! Hashing is slow on purpose: requests run these on the hashing threads
//! ([`crate::auth::hashing::run`]), never on the async or the blocking pool's threads.
//!
//! The 19 MiB of argon2 memory a hash needs is kept for the next one ([`release_memory`]
//! gives it back). Allocated per hash, the buffer was mapped, faulted in page by page and
//! unmapped again every time (`serve` hands allocations over 1 MiB straight to the
//! system): 25 ms a hash on the development machine, 7 of them in the kernel, against
//! 17 ms on kept memory.

use std::sync::{LazyLock, Mutex, PoisonError};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};

pub const MIN_LENGTH: usize = 12;
pub const MAX_LENGTH: usize = 128;

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

/// The parameters new hashes get.
fn params() -> Params {
    Params::new(19_456, 2, 1, None).expect("valid argon2 parameters")
}

/// argon2 memory kept for the next hash: at most one buffer per hash running at once.
static SPARE_MEMORY: Mutex<Vec<Vec<Block>>> = Mutex::new(Vec::new());

/// Hashes `password` with `salt` into `out` on kept memory, grown to what `params` need.
fn hash_into(
    algorithm: Algorithm,
    version: Version,
    params: Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> argon2::Result<()> {
    let spare = || SPARE_MEMORY.lock().unwrap_or_else(PoisonError::into_inner);
    let blocks = params.block_count();
    let mut memory = spare().pop().unwrap_or_default();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let hashed = Argon2::new(algorithm, version, params).hash_password_into_with_memory(
        password,
        salt,
        out,
        &mut memory[..blocks],
    );
    // Kept only at the size of today's parameters: a stored hash naming more memory (never
    // written by Hookboard) gets its buffer for that check alone.
    if memory.len() == self::params().block_count() {
        spare().push(memory);
    }
    hashed
}

/// Gives the kept argon2 memory back to the system (the hashing threads do when idle).
pub fn release_memory() {
    SPARE_MEMORY
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clear();
}

/// A PHC-format argon2id hash with a fresh random salt.
pub fn hash(password: &str) -> anyhow::Result<String> {
    let failed = |err: &dyn std::fmt::Display| anyhow::anyhow!("password hashing failed: {err}");
    let params = params();
    let salt = argon2::password_hash::try_generate_salt().map_err(|err| failed(&err))?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    hash_into(
        Algorithm::Argon2id,
        Version::V0x13,
        params.clone(),
        password.as_bytes(),
        &salt,
        &mut out,
    )
    .map_err(|err| failed(&err))?;
    let hashed = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|err| failed(&err))?,
        salt: Some(Salt::new(&salt).map_err(|err| failed(&err))?),
        hash: Some(Output::new(&out).map_err(|err| failed(&err))?),
    };
    Ok(hashed.to_string())
}

/// Whether `password` matches `stored`, hashed with the algorithm, version and parameters
/// `stored` names. A malformed stored hash never matches.
pub fn verify(stored: &str, password: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        Algorithm::try_from(parsed.algorithm.as_str()),
        Params::try_from(&parsed),
    ) else {
        return false;
    };
    let Ok(version) = parsed.version.map_or(Ok(Version::default()), Version::try_from) else {
        return false;
    };
    let mut out = vec![0u8; expected.len()];
    hash_into(algorithm, version, params, password.as_bytes(), salt, &mut out).is_ok()
        // `Output`'s comparison takes the same time wherever the bytes differ.
        && Output::new(&out).is_ok_and(|computed| computed == *expected)
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

    /// The kept-memory path must agree with the argon2 crate's own hashing and checking,
    /// both ways, also for hashes made with other parameters (older accounts).
    #[test]
    fn hashes_agree_with_the_argon2_crate_both_ways() {
        use argon2::{PasswordHasher, PasswordVerifier};
        let ours = hash("correct horse battery").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse battery", &parsed)
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"wrong horse battery", &parsed)
                .is_err()
        );

        for (m, t) in [(19_456, 2), (8_192, 3), (65_536, 1)] {
            let theirs = Argon2::new(
                Algorithm::Argon2id,
                Version::V0x13,
                Params::new(m, t, 1, None).unwrap(),
            )
            .hash_password(b"correct horse battery")
            .unwrap()
            .to_string();
            assert!(verify(&theirs, "correct horse battery"), "{theirs}");
            assert!(!verify(&theirs, "correct horse batterz"), "{theirs}");
        }
        let argon2i = Argon2::new(Algorithm::Argon2i, Version::V0x13, params())
            .hash_password(b"correct horse battery")
            .unwrap()
            .to_string();
        assert!(verify(&argon2i, "correct horse battery"));
        // A truncated output or a missing salt never matches.
        assert!(!verify(&ours[..ours.len() - 4], "correct horse battery"));
        assert!(!verify("$argon2id$v=19$m=19456,t=2,p=1", "correct horse battery"));
    }

    #[test]
    fn hashing_goes_on_after_the_memory_is_released() {
        let stored = hash("correct horse battery").unwrap();
        release_memory();
        assert!(verify(&stored, "correct horse battery"));
        release_memory();
        assert!(verify(
            &hash("another horse battery").unwrap(),
            "another horse battery"
        ));
    }

    #[test]
    fn length_limits_are_explained() {
        assert!(validate("short").unwrap_err().contains("at least 12"));
        assert!(validate(&"x".repeat(129)).unwrap_err().contains("at most 128"));
        assert!(validate("twelve chars").is_ok());
    }
}
