//! A webhook's custom headers at rest: credentials sealed with the secret key, other values
//! in clear; shown masked; a masked value sent back by a form means "keep the stored one".

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use super::Webhook;
use crate::crypto::SecretBox;
use crate::error::AppError;
use crate::validation::webhook::{is_secret_header, mask};

/// What a header whose sealed value cannot be opened (the secret key changed) shows.
pub const UNREADABLE: &str = "•••• (cannot be decrypted)";

/// A custom header as stored: credentials are sealed, other values kept in clear.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct StoredHeader {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sealed: Option<String>,
}

impl StoredHeader {
    fn open(&self, secrets: &SecretBox) -> anyhow::Result<String> {
        match (&self.value, &self.sealed) {
            (Some(value), _) => Ok(value.clone()),
            (None, Some(sealed)) => secrets.open(&STANDARD.decode(sealed)?),
            (None, None) => Ok(String::new()),
        }
    }
}

/// A custom header as people see it: credentials masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShownHeader {
    pub name: String,
    pub value: String,
    pub masked: bool,
}

/// The stored form of headers: credentials sealed.
pub(super) fn seal(headers: &[(String, String)], secrets: &SecretBox) -> serde_json::Value {
    let stored: Vec<StoredHeader> = headers
        .iter()
        .map(|(name, value)| {
            let secret = is_secret_header(name);
            StoredHeader {
                name: name.clone(),
                value: (!secret).then(|| value.clone()),
                sealed: secret.then(|| STANDARD.encode(secrets.seal(value))),
            }
        })
        .collect();
    serde_json::to_value(stored).expect("headers serialize")
}

impl Webhook {
    /// Custom headers with their real values, for delivery. A sealed value that cannot be
    /// opened is an error, never an empty value.
    pub fn headers(&self, secrets: &SecretBox) -> anyhow::Result<Vec<(String, String)>> {
        self.stored_headers
            .iter()
            .map(|h| {
                let value = h.open(secrets).map_err(|err| {
                    err.context(format!(
                        "webhook {}: the sealed value of header `{}` cannot be opened",
                        self.id, h.name
                    ))
                })?;
                Ok((h.name.clone(), value))
            })
            .collect()
    }

    /// Custom headers as shown on pages and in the API: credentials masked, and a value
    /// that cannot be decrypted shown as [`UNREADABLE`].
    pub fn shown_headers(&self, secrets: &SecretBox) -> Vec<ShownHeader> {
        self.stored_headers
            .iter()
            .map(|h| {
                let secret = is_secret_header(&h.name);
                let (value, masked) = match h.open(secrets) {
                    Ok(value) if secret => (mask(&value), true),
                    Ok(value) => (value, false),
                    Err(err) => {
                        tracing::warn!(webhook_id = self.id, header = %h.name, error = %err, "a stored header cannot be decrypted");
                        (UNREADABLE.to_owned(), true)
                    }
                };
                ShownHeader {
                    name: h.name.clone(),
                    value,
                    masked,
                }
            })
            .collect()
    }

    /// A submitted header value that equals the masked form of the stored value means
    /// "unchanged": the form never holds the credential itself. A stored value that cannot
    /// be decrypted is never replaced by its placeholder: the person must type it again.
    pub fn restore_masked(
        &self,
        submitted: Vec<(String, String)>,
        secrets: &SecretBox,
    ) -> Result<Vec<(String, String)>, AppError> {
        submitted
            .into_iter()
            .map(|(name, value)| {
                let stored = self
                    .stored_headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case(name.trim()));
                let Some(stored) = stored else {
                    return Ok((name, value));
                };
                match stored.open(secrets) {
                    Ok(real) if is_secret_header(&stored.name) && mask(&real) == value.trim() => Ok((name, real)),
                    Err(_) if value.trim() == UNREADABLE => Err(AppError::validation(
                        "headers",
                        format!(
                            "The stored value of `{}` cannot be decrypted (HOOKBOARD_SECRET_KEY changed?). Type the value again.",
                            stored.name
                        ),
                    )),
                    _ => Ok((name, value)),
                }
            })
            .collect()
    }
}
