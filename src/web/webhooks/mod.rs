//! The webhook pages (SPEC 3, 3a): the table with its filters and Excel export, Add / Edit
//! in one form, the status switch and delete, and the webhook page with its delivery log
//! and buttons. Every change goes through [`crate::services::webhooks`]; every action
//! answers htmx with a fragment and everyone else with a full page or a redirect.

pub mod actions;
pub mod editing;
pub mod form;
pub mod page;
pub mod replay;
pub mod switching;
pub mod table;
