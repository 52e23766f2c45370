//! Hookboard's integration tests: one binary, the real app on a real PostgreSQL.

mod helpers;

mod access;
mod browser;
mod cli;
mod embedded;
mod health;
mod login;
mod migrations;
mod tenants;
mod webhooks;
