//! Credentials and the limits that protect them, without the web: password hashing and the
//! threads it runs on, the login throttles per account and per address, and the cap on
//! connections per address.

pub mod address_throttle;
pub mod connections;
pub mod hashing;
pub mod password;
pub mod throttle;
