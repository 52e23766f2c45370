//! One module per table: a read struct, a `New…` insert struct, and the queries as
//! functions that take the connection (and, for tenant data, the tenant id).

pub mod alert;
pub mod api_key;
pub mod audit;
pub mod connection;
pub mod delivery;
pub mod event;
pub mod event_type;
pub mod hourly;
pub mod idempotency;
pub mod password_link;
pub mod session;
pub mod tenant;
pub mod user;
pub mod webhook;

/// Random bytes from the operating system's CSPRNG, as lowercase hex.
pub fn random_hex(bytes: usize) -> String {
    use rand::RngCore;
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// SHA-256 of a high-entropy token (API key, session key) as hex: the form stored at rest.
pub fn token_hash(token: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(token.as_bytes()))
}
