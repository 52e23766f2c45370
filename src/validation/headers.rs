//! A webhook's custom headers: which names may be set (never the ones Hookboard sets, nor
//! hop-by-hop or framing ones), their limits, and which values are masked once saved.

pub const MAX_HEADERS: usize = 20;
pub const MAX_HEADER_BYTES: usize = 4096;
/// Headers Hookboard sets itself, or that would break the request.
pub const RESERVED_HEADERS: [&str; 6] = [
    "host",
    "content-length",
    "content-type",
    "connection",
    "transfer-encoding",
    "user-agent",
];
/// Hop-by-hop and framing headers (RFC 9110 7.6.1, 9112 6, 9113 8.2.2): they speak to
/// the next hop or change how the body is framed or coded, so a custom value would
/// break the delivery or smuggle a second meaning past a proxy.
pub const FRAMING_HEADERS: [&str; 7] = [
    "expect",
    "te",
    "upgrade",
    "keep-alive",
    "trailer",
    "proxy-connection",
    "content-encoding",
];
/// The only custom headers whose values are shown in full once saved: names known to
/// carry no credential. Every other value (`Authorization`, `Cookie`, `X-Session`,
/// `X-Signature-Hmac`, and any name nobody thought of) is stored sealed and masked, so a
/// new way to spell a credential cannot leak to viewers.
pub const PLAIN_HEADERS: [&str; 7] = [
    "accept",
    "accept-language",
    "cache-control",
    "x-environment",
    "x-request-source",
    "x-source",
    "x-team",
];

pub(super) fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

pub(super) fn check_headers(rows: &[(String, String)]) -> Result<Vec<(String, String)>, String> {
    let rows: Vec<(String, String)> = rows
        .iter()
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .filter(|(n, v)| !(n.is_empty() && v.is_empty()))
        .collect();
    if rows.len() > MAX_HEADERS {
        return Err(format!(
            "At most {MAX_HEADERS} custom headers (there are {}).",
            rows.len()
        ));
    }
    let mut seen: Vec<String> = Vec::new();
    for (name, value) in &rows {
        if name.is_empty() {
            return Err("Every header needs a name.".into());
        }
        if !name.chars().all(is_token_char) {
            return Err(format!(
                "`{name}` is not a valid header name (letters, digits and -_.!#$%&'*+^`|~ only)."
            ));
        }
        let lower = name.to_ascii_lowercase();
        if RESERVED_HEADERS.contains(&lower.as_str())
            || lower.starts_with("webhook-")
            || lower.starts_with("x-hookboard-")
        {
            return Err(format!(
                "`{name}` is set by Hookboard itself and cannot be changed."
            ));
        }
        if is_hop_by_hop(&lower) {
            return Err(format!(
                "`{name}` controls how the request is framed or forwarded and cannot be set on a webhook."
            ));
        }
        if seen.contains(&lower) {
            return Err(format!("The header `{name}` appears twice."));
        }
        seen.push(lower);
        if name.len() + value.len() > MAX_HEADER_BYTES {
            return Err(format!(
                "The header `{name}` is longer than {MAX_HEADER_BYTES} bytes."
            ));
        }
        if value.chars().any(|c| c.is_control() && c != '\t') {
            return Err(format!(
                "The value of `{name}` contains a line break or control character."
            ));
        }
    }
    Ok(rows)
}

/// Whether a header speaks to the connection or frames the body: never a custom header,
/// and never sent as one, even if a webhook saved before it was refused carries it.
pub fn is_hop_by_hop(name: &str) -> bool {
    let lower = name.trim().to_ascii_lowercase();
    FRAMING_HEADERS.contains(&lower.as_str()) || lower == "connection" || lower == "transfer-encoding"
}

/// Whether a header's value is to be sealed and masked after saving: every one not in
/// [`PLAIN_HEADERS`].
pub fn is_secret_header(name: &str) -> bool {
    let lower = name.trim().to_ascii_lowercase();
    !PLAIN_HEADERS.contains(&lower.as_str())
}

/// `Bearer abcdef123456` becomes `Bearer ••••3456`.
pub fn mask(value: &str) -> String {
    let tail: String = value
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    if value.chars().count() <= 8 {
        "••••".to_owned()
    } else {
        match value.split_once(' ') {
            Some((scheme, _)) if scheme.len() < 16 => format!("{scheme} ••••{tail}"),
            _ => format!("••••{tail}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_headers_are_masked() {
        for secret in [
            "Authorization",
            "X-Api-Key",
            "Cookie",
            "X-Session",
            "X-Signature-Hmac",
            "Proxy-Authorization",
            "X-Anything-New",
        ] {
            assert!(is_secret_header(secret), "{secret} is masked");
        }
        for plain in ["Accept", "accept-language", "X-Source", "X-Team", "X-Environment"] {
            assert!(!is_secret_header(plain), "{plain} is shown");
        }
        assert_eq!(mask("Bearer sk_live_123456789"), "Bearer ••••6789");
        assert_eq!(mask("short"), "••••");
    }
}
