//! Credentials without the web: password hashing and the login throttle, shared by the
//! pages, the operator console and the command line.

pub mod address_throttle;
pub mod password;
pub mod throttle;
