//! One attempt: the request a claimed delivery becomes (the payload as stored, the
//! Standard Webhooks headers and signature, the webhook's own headers, Content-Language
//! when asked for) sent through the guarded HTTP client. What the request showed is kept
//! for the attempt log, with the webhook's own header values hidden.

use std::sync::Arc;

use super::super::http::{self, Outcome};
use super::super::sign::signature_header;
use super::{Dispatcher, Finished, Job, Target};

impl Dispatcher {
    /// Sends one claimed delivery.
    pub(super) async fn attempt(&self, job: Job, target: Arc<Target>) -> Finished {
        let started_at = self.clock.now();
        let timestamp = started_at.timestamp();
        let mut headers: Vec<(String, String)> = vec![
            ("content-type".into(), "application/json".into()),
            ("webhook-id".into(), job.event_id.clone()),
            ("webhook-timestamp".into(), timestamp.to_string()),
            ("x-hookboard-event".into(), job.event_type.clone()),
        ];
        match signature_header(&target.secrets, &job.event_id, timestamp, job.body.as_bytes()) {
            Ok(signature) => headers.push(("webhook-signature".into(), signature)),
            Err(err) => {
                let outcome =
                    Outcome::not_sent("signing", format!("The signing secret could not be used: {err}"));
                return Finished {
                    job,
                    started_at,
                    outcome,
                    request_headers: serde_json::json!({}),
                    retry_on_error: target.retry_on_error,
                };
            }
        }
        if target.use_customer_language
            && let Some(language) = job.language.clone().or_else(|| body_language(&job.body))
        {
            headers.push(("content-language".into(), language));
        }
        let shown: serde_json::Map<String, serde_json::Value> = headers
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .chain(
                target
                    .headers
                    .iter()
                    .map(|(k, _)| (k.clone(), serde_json::Value::String("(custom header)".into()))),
            )
            .collect();
        headers.extend(target.headers.iter().cloned());
        let body = bytes::Bytes::from(job.body.clone());
        let outcome = match &target.url {
            Ok(url) => http::send(&self.client, url, headers, body, &self.allowed).await,
            Err(why) => Outcome::not_sent("request", why.clone()),
        };
        self.metrics.record_attempt(outcome.succeeded, outcome.duration);
        Finished {
            job,
            started_at,
            outcome,
            request_headers: serde_json::Value::Object(shown),
            retry_on_error: target.retry_on_error,
        }
    }
}

/// `customer.language` of an envelope, for the Content-Language header.
fn body_language(body: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    value["data"]["customer"]["language"]
        .as_str()
        .filter(|l| !l.is_empty() && l.len() <= 35)
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::body_language;

    #[test]
    fn the_customer_language_comes_from_the_envelope_when_it_is_sensible() {
        let body = |language: &str| format!(r#"{{"data":{{"customer":{{"language":{language}}}}}}}"#);
        assert_eq!(body_language(&body(r#""de-CH""#)), Some("de-CH".into()));
        assert_eq!(body_language(&body(r#""""#)), None, "empty");
        assert_eq!(
            body_language(&body(&format!(r#""{}""#, "x".repeat(36)))),
            None,
            "too long"
        );
        assert_eq!(body_language(&body("7")), None, "not a string");
        assert_eq!(body_language("not json"), None);
    }
}
