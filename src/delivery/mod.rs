//! The delivery engine: the SSRF guard that decides which addresses a webhook may reach.

pub mod ssrf;
