//! Prometheus text metrics, kept in process: HTTP requests by route and status class.
//! Delivery metrics join them as the engine grows.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds (seconds) of the attempt latency histogram.
const LATENCY_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0,
];

#[derive(Default)]
pub struct Metrics {
    /// (method, route pattern, status class like "2xx") -> count
    requests: Mutex<BTreeMap<(String, String, &'static str), u64>>,
    /// Delivery results written, by the state they reached.
    deliveries: Mutex<BTreeMap<&'static str, u64>>,
    attempts: Mutex<Histogram>,
    /// Passwords checked against an account's stored hash (logins, password changes).
    password_checks: AtomicU64,
}

#[derive(Default)]
struct Histogram {
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
    succeeded: u64,
    failed: u64,
}

/// What the database says about the queue, read when metrics are scraped.
#[derive(Debug, Clone, Copy, Default)]
pub struct QueueGauges {
    pub due: i64,
    pub oldest_due_seconds: f64,
    pub parked: i64,
}

impl Metrics {
    pub fn record_password_check(&self) {
        self.password_checks.fetch_add(1, Ordering::Relaxed);
    }

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

    /// A delivery reached `status` (succeeded, failed, pending for a retry, parked).
    pub fn record_delivery(&self, status: &'static str) {
        *self
            .deliveries
            .lock()
            .expect("metrics lock")
            .entry(status)
            .or_default() += 1;
    }

    pub fn record_attempt(&self, succeeded: bool, took: std::time::Duration) {
        let seconds = took.as_secs_f64();
        let mut h = self.attempts.lock().expect("metrics lock");
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                h.buckets[i] += 1;
            }
        }
        h.count += 1;
        h.sum += seconds;
        if succeeded {
            h.succeeded += 1;
        } else {
            h.failed += 1;
        }
    }

    /// Everything, with the queue's gauges.
    pub fn render_with(&self, queue: QueueGauges) -> String {
        let mut out = self.render();
        out.push_str("# HELP hookboard_deliveries_total Delivery results written, by the state reached.\n");
        out.push_str("# TYPE hookboard_deliveries_total counter\n");
        for (status, count) in self.deliveries.lock().expect("metrics lock").iter() {
            let _ = writeln!(out, "hookboard_deliveries_total{{outcome=\"{status}\"}} {count}");
        }
        let h = self.attempts.lock().expect("metrics lock");
        out.push_str("# HELP hookboard_delivery_attempts_total Delivery attempts, by result.\n");
        out.push_str("# TYPE hookboard_delivery_attempts_total counter\n");
        let _ = writeln!(
            out,
            "hookboard_delivery_attempts_total{{result=\"succeeded\"}} {}",
            h.succeeded
        );
        let _ = writeln!(
            out,
            "hookboard_delivery_attempts_total{{result=\"failed\"}} {}",
            h.failed
        );
        out.push_str("# HELP hookboard_delivery_attempt_seconds Time of one delivery attempt.\n");
        out.push_str("# TYPE hookboard_delivery_attempt_seconds histogram\n");
        for (bound, count) in LATENCY_BUCKETS.iter().zip(h.buckets.iter()) {
            let _ = writeln!(
                out,
                "hookboard_delivery_attempt_seconds_bucket{{le=\"{bound}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "hookboard_delivery_attempt_seconds_bucket{{le=\"+Inf\"}} {}",
            h.count
        );
        let _ = writeln!(out, "hookboard_delivery_attempt_seconds_sum {}", h.sum);
        let _ = writeln!(out, "hookboard_delivery_attempt_seconds_count {}", h.count);
        out.push_str("# HELP hookboard_queue_due Deliveries due now and not claimed.\n# TYPE hookboard_queue_due gauge\n");
        let _ = writeln!(out, "hookboard_queue_due {}", queue.due);
        out.push_str("# HELP hookboard_queue_oldest_due_seconds Age of the oldest due delivery.\n# TYPE hookboard_queue_oldest_due_seconds gauge\n");
        let _ = writeln!(
            out,
            "hookboard_queue_oldest_due_seconds {}",
            queue.oldest_due_seconds
        );
        out.push_str("# HELP hookboard_queue_parked Deliveries parked while their webhook is off.\n# TYPE hookboard_queue_parked gauge\n");
        let _ = writeln!(out, "hookboard_queue_parked {}", queue.parked);
        out
    }

    /// The Prometheus text exposition of the in-process metrics.
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
        out.push_str(concat!(
            "# HELP hookboard_password_checks_total Passwords checked against an account's hash.\n",
            "# TYPE hookboard_password_checks_total counter\n",
        ));
        let _ = writeln!(
            out,
            "hookboard_password_checks_total {}",
            self.password_checks.load(Ordering::Relaxed)
        );
        out
    }
}

fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
