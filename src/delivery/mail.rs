//! Alert mails: what they say (plain text and HTML, every fact the reader needs to act)
//! and sending them over SMTP (`HOOKBOARD_SMTP_URL`) with lettre.

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::models::alert::Alert;

/// How long one conversation with the mail server may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(20);

/// The SMTP server alert mails go through.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    /// A mailer for `url` (`smtp://host:port`, `smtps://user:password@host:465`) sending as
    /// `from`.
    pub fn new(url: &str, from: &str) -> anyhow::Result<Mailer> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)?
            .timeout(Some(SMTP_TIMEOUT))
            .build();
        Ok(Mailer {
            transport,
            from: from.parse()?,
        })
    }

    /// Sends one mail to every recipient; the error in words when the server refused it or
    /// could not be reached.
    pub async fn send(&self, to: &[String], mail: &Mail) -> Result<(), String> {
        let mut builder = Message::builder().from(self.from.clone()).subject(&mail.subject);
        for address in to {
            let mailbox: Mailbox = address
                .parse()
                .map_err(|e| format!("`{address}` is not a mail address: {e}"))?;
            builder = builder.to(mailbox);
        }
        let message = builder
            .multipart(MultiPart::alternative_plain_html(
                mail.text.clone(),
                mail.html.clone(),
            ))
            .map_err(|e| e.to_string())?;
        self.transport
            .send(message)
            .await
            .map(drop)
            .map_err(|e| format!("the mail server did not take it: {e}"))
    }
}

/// One alert mail.
pub struct Mail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// What the mail of an alert needs besides the alert.
pub struct Context<'a> {
    pub tenant_name: &'a str,
    /// Deliveries of the webhook waiting to go out (pending or parked).
    pub waiting: i64,
    /// The webhook page, absolute.
    pub link: String,
}

/// The mail of an alert: the subject names the change (`failing`, `disabled`,
/// `recovered`), the webhook's No and its endpoint's host.
pub fn compose(alert: &Alert, context: &Context<'_>) -> Mail {
    let subject = format!(
        "[Hookboard] Webhook No {} ({}) {}",
        alert.webhook_number,
        alert.host(),
        alert.headline()
    );
    let what = match alert.kind.as_str() {
        "failing" => "Its last 3 delivery attempts failed. Hookboard keeps retrying on the schedule; \
                      if a delivery fails all its retries, the webhook is switched off."
            .to_owned(),
        "disabled" => "Hookboard switched it off. New events are parked, not lost: switch the webhook \
                       back on to resend or drop them."
            .to_owned(),
        _ => "It delivers successfully again.".to_owned(),
    };
    let waiting = match context.waiting {
        0 => "No deliveries are waiting.".to_owned(),
        1 => "1 delivery is waiting.".to_owned(),
        n => format!("{n} deliveries are waiting."),
    };
    let text = format!(
        "Webhook No {number} of {tenant} {headline}.\n\n\
         Endpoint: {url}\n\
         Reason: {reason}\n\
         Failed deliveries in a row: {failures} of 11\n\
         {waiting}\n\n\
         {what}\n\n\
         Open the webhook and its delivery log: {link}\n",
        number = alert.webhook_number,
        tenant = context.tenant_name,
        headline = alert.headline(),
        url = alert.url,
        reason = alert.reason,
        failures = alert.consecutive_failures,
        link = context.link,
    );
    let html = format!(
        "<!DOCTYPE html><html><body style=\"font-family: sans-serif\">\
         <p><strong>Webhook No {number}</strong> of {tenant} {headline}.</p>\
         <table>\
         <tr><th align=\"left\">Endpoint</th><td><code>{url}</code></td></tr>\
         <tr><th align=\"left\">Reason</th><td>{reason}</td></tr>\
         <tr><th align=\"left\">Failed deliveries in a row</th><td>{failures} of 11</td></tr>\
         <tr><th align=\"left\">Waiting</th><td>{waiting}</td></tr>\
         </table>\
         <p>{what}</p>\
         <p><a href=\"{link}\">Open webhook No {number} and its delivery log</a></p>\
         </body></html>",
        number = alert.webhook_number,
        tenant = escape(context.tenant_name),
        headline = alert.headline(),
        url = escape(&alert.url),
        reason = escape(&alert.reason),
        failures = alert.consecutive_failures,
        waiting = escape(&waiting),
        what = escape(&what),
        link = escape(&context.link),
    );
    Mail { subject, text, html }
}

/// HTML-escapes text for the mail's HTML part.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}
