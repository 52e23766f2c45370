//! Hookboard's integration tests: one binary, the real app on a real PostgreSQL.

mod helpers;

mod access;
mod browser;
mod cli;
mod delivery;
mod embedded;
mod health;
mod login;
mod migrations;
mod receiver;
mod snapshots;
mod tenants;
mod webhooks;
