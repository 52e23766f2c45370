//! The rules for a webhook's fields. The HTML form and the JSON API both call
//! [`validate`], so they refuse the same input with the same messages.

use std::collections::BTreeMap;
use std::net::{IpAddr, ToSocketAddrs};

use super::headers::check_headers;
pub use super::headers::{
    FRAMING_HEADERS, MAX_HEADER_BYTES, MAX_HEADERS, PLAIN_HEADERS, RESERVED_HEADERS, is_hop_by_hop,
    is_secret_header, mask,
};
use super::ssrf::{self, Cidr};

pub const MAX_URL_LENGTH: usize = 2048;
pub const MAX_DESCRIPTION_CHARS: usize = 500;
pub const MAX_WEBHOOKS_PER_TENANT: i64 = 100;
/// Payload sections a webhook may choose to receive (seed 003 "capabilities").
pub const CAPABILITIES: [&str; 5] = ["customer", "pricing", "units", "payment", "questions"];
/// What a person or an API client asks for.
#[derive(Debug, Clone)]
pub struct Input {
    pub url: String,
    pub description: String,
    pub events: Vec<String>,
    pub connection_id: Option<i64>,
    pub capabilities: Vec<String>,
    pub headers: Vec<(String, String)>,
    pub active: bool,
    pub api_key_enabled: bool,
    pub retry_on_error: bool,
    pub use_customer_language: bool,
    /// Deliveries with the same ordering key go out one at a time, in publish order.
    pub ordered: bool,
    /// A CEL expression over the event (SPEC 9d); `None` sends every event.
    pub filter: Option<String>,
}

/// A new webhook: active, with its API key on and retries on (seed 000, 003).
impl Default for Input {
    fn default() -> Self {
        Input {
            url: String::new(),
            description: String::new(),
            events: Vec::new(),
            connection_id: None,
            capabilities: Vec::new(),
            headers: Vec::new(),
            active: true,
            api_key_enabled: true,
            retry_on_error: true,
            use_customer_language: false,
            ordered: false,
            filter: None,
        }
    }
}

/// What validation needs to know about the world.
pub struct Context<'a> {
    pub allow_http: bool,
    pub allowed_private: &'a [Cidr],
    pub known_events: &'a [String],
    /// The catalog's example payloads by event type: a filter is tried on those of the
    /// webhook's events.
    pub examples: &'a [(String, serde_json::Value)],
    pub tenant_connections: &'a [i64],
    /// Resolve host names and refuse those that point at private addresses.
    pub resolve: bool,
}

/// Errors by field name (the form's and the API's field names).
pub type FieldErrors = BTreeMap<&'static str, String>;

/// A webhook whose every field passed [`validate`], cleaned (trimmed, sorted, without
/// duplicates): the only form of a webhook the store saves. Parse, don't validate: no code
/// path can hand the store an unchecked one.
#[derive(Debug, Clone)]
pub struct Valid(Input);

impl std::ops::Deref for Valid {
    type Target = Input;
    fn deref(&self) -> &Input {
        &self.0
    }
}

impl Valid {
    pub fn into_inner(self) -> Input {
        self.0
    }
}

/// Checks every field; on success the input comes back cleaned, as a [`Valid`] webhook.
pub fn validate(mut input: Input, ctx: &Context<'_>) -> Result<Valid, FieldErrors> {
    let mut errors = FieldErrors::new();
    input.url = input.url.trim().to_owned();
    if let Err(message) = check_url(&input.url, ctx) {
        errors.insert("url", message);
    }
    input.description = input.description.trim().to_owned();
    let chars = input.description.chars().count();
    if chars > MAX_DESCRIPTION_CHARS {
        errors.insert(
            "description",
            format!("The description may have at most {MAX_DESCRIPTION_CHARS} characters (it has {chars})."),
        );
    } else if input
        .description
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        errors.insert(
            "description",
            "The description may contain line breaks but no other control characters.".into(),
        );
    }
    input.events.sort();
    input.events.dedup();
    if input.events.is_empty() {
        errors.insert("events", "Choose at least one event to send.".into());
    } else if let Some(unknown) = input.events.iter().find(|e| !ctx.known_events.contains(e)) {
        errors.insert(
            "events",
            format!("`{unknown}` is not an event type of the catalog."),
        );
    }
    if let Some(id) = input.connection_id
        && !ctx.tenant_connections.contains(&id)
    {
        errors.insert("connection", "Choose one of your connections.".into());
    }
    input.capabilities.sort();
    input.capabilities.dedup();
    if let Some(unknown) = input
        .capabilities
        .iter()
        .find(|c| !CAPABILITIES.contains(&c.as_str()))
    {
        errors.insert(
            "capabilities",
            format!(
                "`{unknown}` is not a capability (use {}).",
                CAPABILITIES.join(", ")
            ),
        );
    }
    input.filter = super::filter::normalize(input.filter.as_deref());
    if let Some(filter) = &input.filter {
        let examples: Vec<(&str, &serde_json::Value)> = ctx
            .examples
            .iter()
            .filter(|(code, _)| input.events.contains(code))
            .map(|(code, data)| (code.as_str(), data))
            .collect();
        if let Err(message) = super::filter::validate(filter, &examples) {
            errors.insert("filter", message);
        }
    }
    match check_headers(&input.headers) {
        Ok(headers) => input.headers = headers,
        Err(message) => {
            errors.insert("headers", message);
        }
    }
    if errors.is_empty() {
        Ok(Valid(input))
    } else {
        Err(errors)
    }
}

fn check_url(text: &str, ctx: &Context<'_>) -> Result<(), String> {
    if text.is_empty() {
        return Err("Enter the endpoint URL that will receive the POST requests.".into());
    }
    if text.len() > MAX_URL_LENGTH {
        return Err(format!(
            "The URL may have at most {MAX_URL_LENGTH} characters (it has {}).",
            text.len()
        ));
    }
    let url = url::Url::parse(text)
        .map_err(|_| "Enter a full URL, like https://crm.example.com/webhooks.".to_owned())?;
    match url.scheme() {
        "https" => {}
        "http" if ctx.allow_http => {}
        "http" => {
            return Err("The URL must start with https:// (plain http is not allowed here).".into());
        }
        _ => return Err("The URL must start with https://.".into()),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "Remove the user name and password from the URL; send credentials in a header instead.".into(),
        );
    }
    if url.fragment().is_some() {
        return Err("Remove the #fragment from the URL; it is never sent to the server.".into());
    }
    let host = url
        .host()
        .ok_or_else(|| "The URL needs a host name.".to_owned())?;
    let literal = match host {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        url::Host::Domain(name) => {
            let name = name.trim_end_matches('.').to_ascii_lowercase();
            if name == "localhost" || name.ends_with(".localhost") {
                let loopback = IpAddr::from([127, 0, 0, 1]);
                return match ssrf::refusal(loopback, ctx.allowed_private) {
                    Some(why) => Err(format!(
                        "The URL points at {why}; webhooks must reach a public server."
                    )),
                    None => Ok(()),
                };
            }
            None
        }
    };
    if let Some(ip) = literal {
        if let Some(why) = ssrf::refusal(ip, ctx.allowed_private) {
            return Err(format!(
                "The URL points at {why}; webhooks must reach a public server."
            ));
        }
        return Ok(());
    }
    if ctx.resolve
        && let Some(host) = url.host_str()
        && !ssrf::never_resolves(host)
    {
        let port = url.port_or_known_default().unwrap_or(443);
        // A name that does not resolve yet is accepted: delivery reports it then.
        if let Ok(addresses) = (host, port).to_socket_addrs() {
            for address in addresses {
                if let Some(why) = ssrf::refusal(address.ip(), ctx.allowed_private) {
                    return Err(format!(
                        "{host} resolves to {why} ({}); webhooks must reach a public server.",
                        address.ip()
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx<'a>(known: &'a [String], allowed: &'a [Cidr]) -> Context<'a> {
        Context {
            allow_http: false,
            allowed_private: allowed,
            known_events: known,
            examples: &[],
            tenant_connections: &[7],
            resolve: false,
        }
    }

    fn input(url: &str) -> Input {
        Input {
            url: url.into(),
            events: vec!["booking.created".into()],
            ..Input::default()
        }
    }

    fn url_error(url: &str) -> String {
        let known = vec!["booking.created".to_owned()];
        validate(input(url), &ctx(&known, &[]))
            .unwrap_err()
            .remove("url")
            .unwrap_or_default()
    }

    #[test]
    fn urls_must_be_absolute_https_public_and_without_credentials() {
        let known = vec!["booking.created".to_owned()];
        assert!(
            validate(
                input("https://hooks.zapier.com/hooks/catch/123456/abcde"),
                &ctx(&known, &[])
            )
            .is_ok()
        );
        assert!(url_error("").contains("Enter the endpoint URL"));
        assert!(url_error("crm.example.com/hook").contains("full URL"));
        assert!(url_error("http://crm.example.com/hook").contains("https://"));
        assert!(url_error("ftp://crm.example.com/hook").contains("https://"));
        assert!(url_error("https://user:pw@crm.example.com/").contains("user name and password"));
        assert!(url_error(&format!("https://crm.example.com/{}", "a".repeat(2048))).contains("at most 2048"));
        for private in [
            "https://127.0.0.1/",
            "https://localhost/x",
            "https://api.localhost/",
            "https://10.0.0.8/",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/",
            "https://[::ffff:10.0.0.1]/",
            "https://2130706433/",
            "https://0x7f.0.0.1/",
            "https://0177.0.0.1/",
            "https://[64:ff9b::a00:1]/",
        ] {
            assert!(
                url_error(private).contains("public server"),
                "{private}: {}",
                url_error(private)
            );
        }
    }

    #[test]
    fn the_allow_list_lets_listed_private_ranges_through() {
        let known = vec!["booking.created".to_owned()];
        let allowed = vec!["127.0.0.0/8".parse().unwrap()];
        assert!(validate(input("https://127.0.0.1:9000/hook"), &ctx(&known, &allowed)).is_ok());
        assert!(validate(input("https://localhost:9000/hook"), &ctx(&known, &allowed)).is_ok());
    }

    #[test]
    fn a_description_keeps_line_breaks_but_no_other_control_characters() {
        let known = vec!["booking.created".to_owned()];
        let mut ok = input("https://crm.example/");
        ok.description = "Bookings\r\nto the CRM\t(sales)".into();
        assert!(validate(ok, &ctx(&known, &[])).is_ok());
        for bad in ["nul\0here", "bell\u{7}", "esc\u{1b}[31m"] {
            let mut with = input("https://crm.example/");
            with.description = bad.into();
            let errors = validate(with, &ctx(&known, &[])).unwrap_err();
            assert!(
                errors["description"].contains("no other control characters"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn events_headers_and_capabilities_are_checked() {
        let known = vec!["booking.created".to_owned()];
        let mut bad = input("https://crm.example.com/");
        bad.events = vec![];
        bad.capabilities = vec!["everything".into()];
        bad.connection_id = Some(99);
        bad.description = "x".repeat(501);
        let errors = validate(bad, &ctx(&known, &[])).unwrap_err();
        assert!(errors["events"].contains("at least one"));
        assert!(errors["capabilities"].contains("not a capability"));
        assert!(errors["connection"].contains("your connections"));
        assert!(errors["description"].contains("at most 500"));

        let header_error = |name: &str, value: &str| {
            let mut with = input("https://crm.example.com/");
            with.headers = vec![(name.into(), value.into())];
            validate(with, &ctx(&known, &[]))
                .err()
                .and_then(|mut e| e.remove("headers"))
        };
        assert_eq!(header_error("Authorization", "Bearer abc"), None);
        assert!(
            header_error("Content-Type", "text/plain")
                .unwrap()
                .contains("set by Hookboard")
        );
        assert!(
            header_error("webhook-signature", "x")
                .unwrap()
                .contains("set by Hookboard")
        );
        for framing in [
            "Expect",
            "TE",
            "Upgrade",
            "Keep-Alive",
            "Trailer",
            "Proxy-Connection",
            "Content-Encoding",
            "connection",
            "Transfer-Encoding",
        ] {
            let message = header_error(framing, "x").unwrap_or_default();
            assert!(
                message.contains("cannot be set") || message.contains("cannot be changed"),
                "{framing}: {message}"
            );
        }
        assert!(
            header_error("Bad Name", "x")
                .unwrap()
                .contains("not a valid header name")
        );
        assert!(
            header_error("X-Evil", "a\r\nInjected: 1")
                .unwrap()
                .contains("line break")
        );
        assert!(
            header_error("X-Big", &"v".repeat(4100))
                .unwrap()
                .contains("longer than 4096")
        );
        let mut many = input("https://crm.example.com/");
        many.headers = (0..21).map(|i| (format!("X-H{i}"), "v".to_owned())).collect();
        assert!(validate(many, &ctx(&known, &[])).unwrap_err()["headers"].contains("At most 20"));
    }
}
