//! Hookboard: the webhook module of a travel-booking platform. A multi-tenant,
//! server-rendered dashboard to configure outgoing webhooks, and the engine that delivers
//! the platform's events to them.

pub mod api;
pub mod app;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod crypto;
pub mod db;
pub mod delivery;
pub mod error;
pub mod metrics;
pub mod models;
pub mod routes;
pub mod schema;
pub mod services;
pub mod settings;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod validation;
pub mod web;
