//! Hookboard's integration tests: one binary, the real app on a real PostgreSQL.

mod helpers;

mod access;
mod api;
mod browser;
mod cli;
mod crash;
mod delivery;
mod doors;
mod embedded;
mod fuzz;
mod health;
mod layers;
mod login;
mod migrations;
mod openapi;
mod receiver;
mod snapshots;
mod soak;
mod tenants;
mod webhooks;
