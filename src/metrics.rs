//! Prometheus text metrics, kept in process: HTTP requests by route and status class.
//! Delivery metrics join them as the engine grows.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

#[derive(Default)]
pub struct Metrics {
    /// (method, route pattern, status class like "2xx") -> count
    requests: Mutex<BTreeMap<(String, String, &'static str), u64>>,
}

impl Metrics {
    pub fn record_request(&self, method: &str, route: &str, status: u16) {
        let class = match status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        let mut requests = self.requests.lock().expect("metrics lock");
        *requests
            .entry((method.to_owned(), route.to_owned(), class))
            .or_default() += 1;
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP hookboard_http_requests_total HTTP requests answered, by route and status class.\n",
        );
        out.push_str("# TYPE hookboard_http_requests_total counter\n");
        for ((method, route, class), count) in self.requests.lock().expect("metrics lock").iter() {
            let _ = writeln!(
                out,
                "hookboard_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{class}\"}} {count}",
                escape_label(method),
                escape_label(route)
            );
        }
        out
    }
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
