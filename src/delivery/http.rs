//! One attempt over HTTP. A single reqwest client for the whole process: connect 5 s and
//! the whole attempt bounded by `HOOKBOARD_DELIVERY_TIMEOUT`; redirects never followed; no
//! proxy from the environment; no decompression; at most 64 KiB of the response read; and
//! every address vetted by the SSRF guard before connecting, through the client's resolver,
//! so the connection goes to the address that was checked.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::validation::ssrf::{self, Cidr};

/// How much of a response is read and kept.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A resolver that refuses names pointing at non-public addresses.
struct GuardedResolver {
    allowed: Arc<Vec<Cidr>>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allowed = self.allowed.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            if ssrf::never_resolves(&host) {
                return Err(format!("{host} is a reserved name that never resolves (RFC 2606)").into());
            }
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if addresses.is_empty() {
                return Err(format!("{host} has no address").into());
            }
            // One refused address refuses the name: a mix is how rebinding attacks look.
            if let Some(bad) = addresses
                .iter()
                .find(|a| ssrf::refusal(a.ip(), &allowed).is_some())
            {
                let why = ssrf::refusal(bad.ip(), &allowed).unwrap_or("a refused address");
                return Err(Box::new(Refused(format!("{host} resolves to {why} ({})", bad.ip()))) as _);
            }
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}

/// A refusal of the SSRF guard.
#[derive(Debug)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// rustls needs one process-wide crypto provider before any client is built; installing
/// it again is harmless.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The process's delivery client.
pub fn client(timeout: Duration, allowed: Vec<Cidr>) -> anyhow::Result<reqwest::Client> {
    install_crypto();
    Ok(reqwest::Client::builder()
        .user_agent(concat!("Hookboard/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .connect_timeout(CONNECT_TIMEOUT.min(timeout))
        .timeout(timeout)
        .pool_idle_timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(16)
        .tcp_nodelay(true)
        .dns_resolver(Arc::new(GuardedResolver {
            allowed: Arc::new(allowed),
        }))
        .build()?)
}

/// What happened on one attempt.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub status: Option<u16>,
    pub succeeded: bool,
    pub duration: Duration,
    pub error_class: Option<&'static str>,
    pub error_message: Option<String>,
    pub response_body: Vec<u8>,
    pub response_headers: serde_json::Value,
    pub retry_after: Option<String>,
}

impl Outcome {
    /// An attempt that ended before anything was sent.
    pub fn not_sent(class: &'static str, message: String) -> Outcome {
        Outcome {
            status: None,
            succeeded: false,
            duration: Duration::ZERO,
            error_class: Some(class),
            error_message: Some(message),
            response_body: Vec::new(),
            response_headers: serde_json::json!({}),
            retry_after: None,
        }
    }

    /// An attempt that failed after `started`, with nothing of an answer to keep.
    fn failed(started: Instant, class: &'static str, message: String) -> Outcome {
        Outcome {
            duration: started.elapsed(),
            ..Outcome::not_sent(class, message)
        }
    }
}

/// Refuses IP-literal URLs the resolver never sees.
pub fn check_literal(url: &reqwest::Url, allowed: &[Cidr]) -> Result<(), String> {
    let ip: Option<IpAddr> = match url.host() {
        Some(url::Host::Ipv4(ip)) => Some(ip.into()),
        Some(url::Host::Ipv6(ip)) => Some(ip.into()),
        _ => None,
    };
    match ip.and_then(|ip| ssrf::refusal(ip, allowed).map(|why| (ip, why))) {
        Some((ip, why)) => Err(format!("{ip} is {why}")),
        None => Ok(()),
    }
}

fn describe(err: &reqwest::Error) -> (&'static str, String) {
    use std::error::Error;
    let mut source = err.source();
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<Refused>() {
            return (
                "ssrf",
                format!("Refused: {refused}; webhooks must reach a public server."),
            );
        }
        source = cause.source();
    }
    let mut chain = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    if err.is_timeout() {
        ("timeout", format!("No complete answer in time ({chain})"))
    } else if chain.contains("certificate") {
        (
            "tls",
            format!("The endpoint's TLS certificate is not valid for it or not trusted ({chain})"),
        )
    } else if chain.contains("reset by peer") {
        ("reset", format!("The endpoint reset the connection ({chain})"))
    } else if err.is_connect() {
        ("connect", format!("Could not connect ({chain})"))
    } else {
        ("request", chain)
    }
}

/// A webhook's URL, parsed once for every attempt of a claim (parsing it for each request
/// was about 1% of the machine in `make bench`), or why it does not parse.
pub fn parse(url: &str) -> Result<reqwest::Url, String> {
    reqwest::Url::parse(url).map_err(|err| format!("The URL does not parse: {err}"))
}

/// Sends one attempt and reads at most [`MAX_RESPONSE_BYTES`] of the answer.
pub async fn send(
    client: &reqwest::Client,
    url: &reqwest::Url,
    headers: Vec<(String, String)>,
    body: bytes::Bytes,
    allowed: &[Cidr],
) -> Outcome {
    let started = Instant::now();
    if let Err(why) = check_literal(url, allowed) {
        return Outcome::failed(
            started,
            "ssrf",
            format!("Refused: {why}; webhooks must reach a public server."),
        );
    }
    let mut request = client.post(url.clone()).body(body);
    for (name, value) in headers
        .into_iter()
        .filter(|(name, _)| !crate::validation::webhook::is_hop_by_hop(name))
    {
        request = request.header(name, value);
    }
    let mut response = match request.send().await {
        Ok(response) => response,
        Err(err) => {
            let (class, message) = describe(&err);
            return Outcome::failed(started, class, message);
        }
    };
    let status = response.status();
    let response_headers = serde_json::Value::Object(
        response
            .headers()
            .iter()
            .take(50)
            .map(|(k, v)| {
                (
                    k.to_string(),
                    serde_json::Value::String(
                        String::from_utf8_lossy(v.as_bytes()).chars().take(512).collect(),
                    ),
                )
            })
            .collect(),
    );
    let retry_after = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut kept = Vec::new();
    let mut body_error = None;
    while kept.len() < MAX_RESPONSE_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = MAX_RESPONSE_BYTES - kept.len();
                kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) => break,
            Err(err) => {
                body_error = Some(describe(&err));
                break;
            }
        }
    }
    drop(response);
    let succeeded = status.is_success();
    let (error_class, error_message) = if succeeded {
        (None, None)
    } else if status.is_redirection() {
        (
            Some("redirect"),
            Some(format!(
                "HTTP {} redirect (redirects are not followed)",
                status.as_u16()
            )),
        )
    } else {
        let reason = status.canonical_reason().unwrap_or("");
        (
            Some("http_status"),
            Some(format!("HTTP {} {reason}", status.as_u16()).trim().to_owned()),
        )
    };
    let error_message = match (error_message, body_error) {
        (Some(message), _) => Some(message),
        (None, Some((_, message))) => Some(format!(
            "Answered {}, but reading the answer failed: {message}",
            status.as_u16()
        )),
        (None, None) => None,
    };
    Outcome {
        status: Some(status.as_u16()),
        succeeded,
        duration: started.elapsed(),
        error_class,
        error_message,
        response_body: kept,
        response_headers,
        retry_after,
    }
}

#[cfg(test)]
mod tests {
    use super::{Outcome, parse};

    #[test]
    fn a_url_that_does_not_parse_becomes_an_attempt_that_says_so_and_sent_nothing() {
        assert_eq!(
            parse("https://hooks.example.com/in?x=1").map(|url| url.to_string()),
            Ok("https://hooks.example.com/in?x=1".to_owned())
        );
        let why = parse("hooks.example.com/in").unwrap_err();
        assert!(why.starts_with("The URL does not parse: "), "{why}");
        let outcome = Outcome::not_sent("request", why.clone());
        assert!(!outcome.succeeded);
        assert_eq!(outcome.status, None);
        assert_eq!(outcome.duration, std::time::Duration::ZERO);
        assert_eq!(
            (outcome.error_class, outcome.error_message),
            (Some("request"), Some(why))
        );
    }
}
