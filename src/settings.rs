//! Settings come from environment variables only, read once at start into [`Settings`].
//! Every variable is listed with its default in the README.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};

/// Where Hookboard runs: `development` generates a missing secret key, `production` refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

/// All of Hookboard's configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    pub environment: Environment,
    /// `None`: run an embedded PostgreSQL under `data_dir`.
    pub database_url: Option<String>,
    pub data_dir: PathBuf,
    pub bind: SocketAddr,
    /// 32 bytes from `HOOKBOARD_SECRET_KEY` (64 hex characters); `None` until resolved.
    pub secret_key: Option<[u8; 32]>,
    pub secure_cookies: bool,
    pub session_idle_timeout: Duration,
    pub session_absolute_timeout: Duration,
    pub allow_http_targets: bool,
    /// Address ranges the SSRF guard lets through (`HOOKBOARD_ALLOW_PRIVATE_TARGETS`).
    pub allow_private_targets: Vec<crate::validation::ssrf::Cidr>,
    pub delivery_timeout: Duration,
    /// How long reading one request body may take, from the end of its headers.
    pub body_timeout: Duration,
    pub retry_schedule: Vec<Duration>,
    pub worker: bool,
    pub worker_concurrency: usize,
    pub api_rate_limit: u32,
    /// Failed logins per client address in 15 minutes before it is refused; 0: off.
    pub login_failures_per_address: u32,
    /// Connections one client address may hold open at once (`0`: no cap).
    pub connections_per_address: usize,
    pub db_pool_size: u32,
    pub retention_days: u32,
    /// `HOOKBOARD_SMTP_URL`: where alert mails go (`smtp://host:port`, `smtps://user:pass@host:465`);
    /// `None`: no mail.
    pub smtp_url: Option<String>,
    /// `HOOKBOARD_SMTP_FROM`: the sender of alert mails.
    pub smtp_from: String,
    /// `HOOKBOARD_PUBLIC_URL`: the dashboard's address as people open it, for links in mails
    /// (default `http://` and `HOOKBOARD_BIND`).
    pub public_url: String,
}

pub const DEFAULT_RETRY_SCHEDULE: &str = "10s,30s,1m,5m,15m,30m,1h,2h,4h,8h";

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup`, so tests can pass their own values.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let environment = match get("HOOKBOARD_ENV").as_deref() {
            None | Some("development") => Environment::Development,
            Some("production") => Environment::Production,
            Some(other) => bail!("HOOKBOARD_ENV must be `development` or `production`, not `{other}`"),
        };
        let secret_key = get("HOOKBOARD_SECRET_KEY")
            .map(|hex| parse_secret_key(&hex))
            .transpose()?;
        if environment == Environment::Production && secret_key.is_none() {
            bail!(
                "HOOKBOARD_SECRET_KEY is not set. In production it must be set (64 hex characters, \
                 e.g. from `openssl rand -hex 32`) and be the same for every Hookboard process \
                 sharing the database."
            );
        }
        let bind_text = get("HOOKBOARD_BIND").unwrap_or_else(|| "127.0.0.1:8080".into());
        let bind = bind_text.parse().with_context(|| {
            format!("HOOKBOARD_BIND must be an address with a port like 127.0.0.1:8080, not `{bind_text}`")
        })?;
        let retry_text = get("HOOKBOARD_RETRY_SCHEDULE").unwrap_or_else(|| DEFAULT_RETRY_SCHEDULE.into());
        let retry_schedule = retry_text
            .split(',')
            .map(|step| parse_duration(step.trim()))
            .collect::<anyhow::Result<Vec<_>>>()
            .context("HOOKBOARD_RETRY_SCHEDULE must be a comma-separated list like 10s,30s,1m")?;
        if retry_schedule.is_empty() || retry_schedule.len() > 20 {
            bail!("HOOKBOARD_RETRY_SCHEDULE must have between 1 and 20 steps");
        }
        Ok(Settings {
            environment,
            database_url: get("DATABASE_URL"),
            data_dir: PathBuf::from(get("HOOKBOARD_DATA_DIR").unwrap_or_else(|| "./.hookboard".into())),
            bind,
            secret_key,
            secure_cookies: parse_bool("HOOKBOARD_SECURE_COOKIES", get("HOOKBOARD_SECURE_COOKIES"), true)?,
            session_idle_timeout: duration_setting(&get, "HOOKBOARD_SESSION_IDLE_TIMEOUT", "30m")?,
            session_absolute_timeout: duration_setting(&get, "HOOKBOARD_SESSION_ABSOLUTE_TIMEOUT", "12h")?,
            allow_http_targets: parse_bool(
                "HOOKBOARD_ALLOW_HTTP_TARGETS",
                get("HOOKBOARD_ALLOW_HTTP_TARGETS"),
                false,
            )?,
            allow_private_targets: {
                let items: Vec<String> = get("HOOKBOARD_ALLOW_PRIVATE_TARGETS")
                    .map(|v| {
                        v.split(',')
                            .map(|s| s.trim().to_owned())
                            .filter(|s| !s.is_empty())
                            .collect()
                    })
                    .unwrap_or_default();
                crate::validation::ssrf::parse_allow_list(&items)
                    .map_err(|e| anyhow::anyhow!("HOOKBOARD_ALLOW_PRIVATE_TARGETS: {e}"))?
            },
            delivery_timeout: duration_setting(&get, "HOOKBOARD_DELIVERY_TIMEOUT", "15s")?,
            body_timeout: duration_setting(&get, "HOOKBOARD_BODY_TIMEOUT", "10s")?,
            retry_schedule,
            worker: match get("HOOKBOARD_WORKER").as_deref() {
                None | Some("on") => true,
                Some("off") => false,
                Some(other) => bail!("HOOKBOARD_WORKER must be `on` or `off`, not `{other}`"),
            },
            worker_concurrency: number_setting(&get, "HOOKBOARD_WORKER_CONCURRENCY", 64, 1, 4096)?,
            api_rate_limit: number_setting(&get, "HOOKBOARD_API_RATE_LIMIT", 1000, 0, 1_000_000)?,
            login_failures_per_address: number_setting(
                &get,
                "HOOKBOARD_LOGIN_FAILURES_PER_ADDRESS",
                50,
                0,
                1_000_000,
            )?,
            connections_per_address: number_setting(
                &get,
                "HOOKBOARD_CONNECTIONS_PER_ADDRESS",
                100,
                0,
                1_000_000,
            )?,
            db_pool_size: number_setting(&get, "HOOKBOARD_DB_POOL_SIZE", 16, 2, 500)?,
            retention_days: number_setting(&get, "HOOKBOARD_RETENTION_DAYS", 30, 1, 3650)?,
            smtp_url: match get("HOOKBOARD_SMTP_URL") {
                None => None,
                Some(url) => {
                    let parsed = url::Url::parse(url.trim())
                        .map_err(|e| anyhow::anyhow!("HOOKBOARD_SMTP_URL is not a URL ({e}): use smtp://host:port or smtps://user:password@host:465"))?;
                    if !matches!(parsed.scheme(), "smtp" | "smtps") || parsed.host_str().is_none() {
                        bail!(
                            "HOOKBOARD_SMTP_URL must be smtp://host:port or smtps://user:password@host:465"
                        );
                    }
                    Some(url.trim().to_owned())
                }
            },
            smtp_from: {
                let from = get("HOOKBOARD_SMTP_FROM").unwrap_or_else(|| "hookboard@localhost".into());
                if from.trim().parse::<lettre::message::Mailbox>().is_err() {
                    bail!(
                        "HOOKBOARD_SMTP_FROM must be a mail address (`alerts@example.com` or `Hookboard <alerts@example.com>`), not `{from}`"
                    );
                }
                from.trim().to_owned()
            },
            public_url: get("HOOKBOARD_PUBLIC_URL")
                .map(|u| u.trim().trim_end_matches('/').to_owned())
                .unwrap_or_else(|| format!("http://{bind}")),
        })
    }
}

fn parse_secret_key(hex_text: &str) -> anyhow::Result<[u8; 32]> {
    let bytes = hex::decode(hex_text.trim())
        .ok()
        .filter(|b| b.len() == 32)
        .context(
            "HOOKBOARD_SECRET_KEY must be 64 hex characters (32 bytes), e.g. from `openssl rand -hex 32`",
        )?;
    let mut key = [0u8; 32];
    key.copy_from_slice(&bytes);
    Ok(key)
}

fn parse_bool(name: &str, value: Option<String>, default: bool) -> anyhow::Result<bool> {
    match value.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None => Ok(default),
        Some("true" | "1" | "yes" | "on") => Ok(true),
        Some("false" | "0" | "no" | "off") => Ok(false),
        Some(other) => bail!("{name} must be `true` or `false`, not `{other}`"),
    }
}

fn duration_setting(
    get: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: &str,
) -> anyhow::Result<Duration> {
    let text = get(name).unwrap_or_else(|| default.into());
    let value =
        parse_duration(&text).with_context(|| format!("{name} must be a duration like 30s, 5m or 2h"))?;
    if value.is_zero() {
        bail!("{name} must be longer than zero");
    }
    Ok(value)
}

fn number_setting<T>(
    get: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: T,
    min: T,
    max: T,
) -> anyhow::Result<T>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let Some(text) = get(name) else { return Ok(default) };
    match text.trim().parse::<T>() {
        Ok(v) if v >= min && v <= max => Ok(v),
        _ => bail!("{name} must be a whole number from {min} to {max}, not `{text}`"),
    }
}

/// Parses `500ms`, `10s`, `5m`, `2h`, `1d`, or a plain number of seconds.
pub fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .with_context(|| format!("`{text}` is not a duration"))?;
    let seconds = |factor: u64| {
        n.checked_mul(factor)
            .map(Duration::from_secs)
            .with_context(|| format!("`{text}` is too long"))
    };
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => seconds(1),
        "m" => seconds(60),
        "h" => seconds(3600),
        "d" => seconds(86_400),
        _ => bail!("`{text}` has an unknown unit (use ms, s, m, h or d)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> anyhow::Result<Settings> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(move |name| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    #[test]
    fn defaults_follow_the_spec() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(s.data_dir, PathBuf::from("./.hookboard"));
        assert!(s.secure_cookies);
        assert_eq!(s.retry_schedule.len(), 10);
        assert_eq!(s.retry_schedule[9], Duration::from_secs(8 * 3600));
        assert_eq!(s.delivery_timeout, Duration::from_secs(15));
        assert_eq!(s.body_timeout, Duration::from_secs(10));
        assert_eq!(s.session_idle_timeout, Duration::from_secs(30 * 60));
        assert_eq!(s.worker_concurrency, 64);
        assert_eq!(s.api_rate_limit, 1000);
    }

    #[test]
    fn bad_values_are_refused_with_the_variable_named() {
        let err = settings(&[("HOOKBOARD_BIND", "nonsense")]).unwrap_err();
        assert!(format!("{err:#}").contains("HOOKBOARD_BIND"));
        let err = settings(&[("HOOKBOARD_SECRET_KEY", "abc")]).unwrap_err();
        assert!(format!("{err:#}").contains("64 hex characters"));
        let err = settings(&[("HOOKBOARD_WORKER_CONCURRENCY", "0")]).unwrap_err();
        assert!(format!("{err:#}").contains("from 1 to 4096"));
        let err = settings(&[("HOOKBOARD_RETRY_SCHEDULE", "10s,soon")]).unwrap_err();
        assert!(format!("{err:#}").contains("HOOKBOARD_RETRY_SCHEDULE"));
    }

    #[test]
    fn production_requires_a_secret_key() {
        let err = settings(&[("HOOKBOARD_ENV", "production")]).unwrap_err();
        assert!(err.to_string().contains("HOOKBOARD_SECRET_KEY is not set"));
        let key = "ab".repeat(32);
        assert!(settings(&[("HOOKBOARD_ENV", "production"), ("HOOKBOARD_SECRET_KEY", &key)]).is_ok());
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert!(parse_duration("5 weeks").is_err());
    }
}
