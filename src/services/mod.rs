//! The product's rules, once: one function per use case (its checks, its transaction, its
//! audit entry, waking the delivery worker), called alike by the pages, the JSON API, the
//! command line and the demo seeding. Services call the store (`crate::models`) and the
//! outbox; they know nothing of HTTP, and every error is an [`AppError`].

pub mod accounts;
pub mod alerts;
pub mod connections;
pub mod credentials;
pub mod dashboard;
pub mod deliveries;
pub mod events;
pub mod export;
pub mod filters;
pub mod password_links;
pub mod replay;
pub mod users;
pub mod webhooks;

pub use crate::error::AppError;
pub use crate::models::audit::Actor;

/// The explanation every webhook page and API call gives on plans without webhooks.
pub const SCALE_PLAN_NOTICE: &str =
    "Webhooks are available on the Scale plan. Ask your account manager to upgrade to use them.";

/// Why the webhook pages are read-only while the tool is switched off.
pub const TOOL_OFF_NOTICE: &str = "Webhooks are switched off under Apps > Tools: nothing is delivered and \
                                   these pages are read-only. Switch them on to make changes.";

/// Checks a short name people type (a connection, a contract id, a key): trimmed, not
/// empty, at most `max` characters, one line.
pub fn check_name(label: &str, text: &str, max: usize) -> Result<String, String> {
    let text = text.trim();
    match text.chars().count() {
        0 => Err(format!("Enter the {label}.")),
        n if n > max => Err(format!(
            "The {label} may have at most {max} characters (it has {n})."
        )),
        _ if text.chars().any(char::is_control) => Err(format!("The {label} may not contain line breaks.")),
        _ => Ok(text.to_owned()),
    }
}
