//! Hookboard's integration tests: one binary, the real app on a real PostgreSQL.

mod helpers;

mod access;
mod api;
mod api_keys;
mod browser;
mod catalog;
mod cli;
mod connections;
mod crash;
mod dashboard;
mod delivery;
mod doors;
mod embedded;
mod export;
mod feed;
mod fuzz;
mod health;
mod layers;
mod login;
mod migrations;
mod openapi;
mod ordered_crash;
mod partners;
mod password_links;
mod receiver;
mod security;
mod sessions;
mod slow_clients;
mod smtp;
mod snapshots;
mod soak;
mod tenants;
mod webhooks;
