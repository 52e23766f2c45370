//! Hookboard's integration tests: one binary, the real app on a real PostgreSQL.

mod helpers;

mod access;
mod api;
mod browser;
mod cli;
mod crash;
mod delivery;
mod embedded;
mod fuzz;
mod health;
mod login;
mod migrations;
mod openapi;
mod receiver;
mod security;
mod snapshots;
mod soak;
mod tenants;
mod webhooks;
