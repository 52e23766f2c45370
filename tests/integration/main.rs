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
mod tenants;
mod webhooks;
