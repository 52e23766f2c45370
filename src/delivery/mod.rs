//! The delivery engine: the outbox that publishing writes to, the dispatcher that works
//! through it, and what one attempt needs (payload, signature, HTTP with the SSRF guard,
//! the retry schedule).

pub mod alerts;
pub mod dispatcher;
mod filtering;
pub mod http;
pub mod mail;
pub mod outbox;
pub mod payload;
pub mod retry;
pub mod sign;
