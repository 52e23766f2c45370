//! Alerts for people: who gets the tenant's alert mails (`/settings/alerts`, the command
//! line), and the alerts under the bell. Raising, publishing and mailing them is the
//! delivery engine's (`delivery::alerts`).

use diesel::Connection as _;
use diesel::PgConnection;

use super::accounts::check_email;
use super::{Actor, AppError};
use crate::models::alert::{self, Alert};
use crate::models::audit::AuditEntry;
use crate::models::tenant::Tenant;
use crate::models::user::User;
use crate::models::webhook::Scope;
use crate::state::AppState;

/// At most this many alert recipients per tenant.
pub const MAX_RECIPIENTS: usize = 20;
/// Alerts the bell's page lists.
pub const RECENT: i64 = 50;

/// The recipients as typed: one address a line or comma-separated, blanks and repeats
/// dropped, each checked, at most [`MAX_RECIPIENTS`].
pub fn parse_recipients(text: &str) -> Result<Vec<String>, AppError> {
    let mut emails: Vec<String> = Vec::new();
    for item in text
        .split(['\n', '\r', ',', ';'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let email = check_email(item).map_err(|m| AppError::validation("emails", m))?;
        if !emails.iter().any(|e| e.eq_ignore_ascii_case(&email)) {
            emails.push(email);
        }
    }
    if emails.len() > MAX_RECIPIENTS {
        return Err(AppError::validation(
            "emails",
            format!(
                "At most {MAX_RECIPIENTS} addresses get alert mails (you gave {}); use a mailing list for more.",
                emails.len()
            ),
        ));
    }
    Ok(emails)
}

/// Who gets the tenant's alert mails.
pub fn recipients(conn: &mut PgConnection, tenant_id: i64) -> Result<Vec<String>, AppError> {
    Ok(Tenant::alert_emails(conn, tenant_id)?)
}

/// Sets who gets the tenant's alert mails (`text` as typed); audited.
pub fn set_recipients(
    conn: &mut PgConnection,
    tenant_id: i64,
    text: &str,
    actor: &Actor,
) -> Result<Vec<String>, AppError> {
    let emails = parse_recipients(text)?;
    conn.transaction(|conn| {
        let before = Tenant::alert_emails(conn, tenant_id)?;
        Tenant::set_alert_emails(conn, tenant_id, &emails)?;
        if before != emails {
            AuditEntry::record(
                conn,
                Some(tenant_id),
                actor,
                "tenant.alert_recipients_changed",
                ("tenant", None),
                serde_json::json!({ "from": before, "to": emails }),
            )?;
        }
        Ok(emails.clone())
    })
}

/// The latest alerts a user may see (a partner: its connection's), and marks them seen.
pub async fn recent_and_seen(state: &AppState, scope: Scope, user_id: i64) -> Result<Vec<Alert>, AppError> {
    state
        .db(move |conn| {
            let alerts = alert::recent(conn, scope.tenant_id, scope.connection_id, RECENT)?;
            if let Some(latest) = alerts.first() {
                User::set_alerts_seen(conn, user_id, latest.id)?;
            }
            Ok(alerts)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::parse_recipients;

    #[test]
    fn recipients_come_a_line_or_comma_separated_without_repeats() {
        assert_eq!(
            parse_recipients("ops@alpine.example\n cto@alpine.example, OPS@alpine.example;\n\n").unwrap(),
            ["ops@alpine.example", "cto@alpine.example"]
        );
        assert!(parse_recipients("not-an-email").is_err());
        let many: Vec<String> = (0..21).map(|i| format!("p{i}@alpine.example")).collect();
        assert!(parse_recipients(&many.join(",")).is_err());
        assert!(parse_recipients("").unwrap().is_empty());
    }
}
