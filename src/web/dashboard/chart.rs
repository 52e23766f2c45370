//! The dashboard's charts as inline SVG, drawn on the server: stacked bars of succeeded,
//! failed and pending per hour or day, a title and description for screen readers, and
//! the same numbers as a table beside it.

use askama::Template;
use chrono_tz::Tz;

use crate::services::dashboard::Bucket;

/// Height of the bars' area in SVG units; the axis labels go below it.
const PLOT_HEIGHT: i64 = 120;
/// Room below the plot for the axis labels.
const LABEL_ROOM: i64 = 16;

/// One chart, with its table.
#[derive(Template)]
#[template(path = "dashboard/chart.html")]
pub struct Chart {
    /// `hours` or `days`: the ids of its title, description and table.
    pub id: &'static str,
    pub title: String,
    pub description: String,
    pub width: i64,
    pub height: i64,
    pub plot_height: i64,
    pub bars: Vec<Bar>,
    pub ticks: Vec<Tick>,
    pub rows: Vec<Row>,
    /// What a row of the table is: "Hour" or "Day".
    pub unit: &'static str,
}

// Rendered by its own template with HTML escaping, so its output may be embedded as is.
impl askama::filters::HtmlSafe for Chart {}

/// One stacked bar: succeeded at the bottom, failed above, pending on top.
pub struct Bar {
    pub x: i64,
    pub width: i64,
    pub label: String,
    pub ok_y: i64,
    pub ok_height: i64,
    pub failed_y: i64,
    pub failed_height: i64,
    pub pending_y: i64,
    pub pending_height: i64,
}

/// A label under the axis.
pub struct Tick {
    pub x: i64,
    pub text: String,
}

/// A row of the table of numbers.
pub struct Row {
    pub label: String,
    pub succeeded: i64,
    pub failed: i64,
    pub pending: i64,
}

impl Chart {
    /// The last 24 hours, labelled in the tenant's timezone.
    pub fn hours(buckets: &[Bucket], timezone: Tz) -> Chart {
        let labels = labels(buckets, timezone, "%H:%M", "%a %H:%M");
        Chart::new(
            "hours",
            "Deliveries in the last 24 hours",
            buckets,
            (20, 6),
            labels,
            "Hour",
        )
    }

    /// The last 7 days of the tenant's calendar.
    pub fn days(buckets: &[Bucket], timezone: Tz) -> Chart {
        let labels = labels(buckets, timezone, "%a", "%a %d %b");
        Chart::new(
            "days",
            "Deliveries in the last 7 days",
            buckets,
            (60, 1),
            labels,
            "Day",
        )
    }

    /// `step` is each bar's width in SVG units and `tick_every` how many bars one axis
    /// label spans; `labels` are each bucket's short (axis) and long (table) names.
    fn new(
        id: &'static str,
        title: &str,
        buckets: &[Bucket],
        (step, tick_every): (i64, usize),
        labels: Vec<(String, String)>,
        unit: &'static str,
    ) -> Chart {
        let max = buckets
            .iter()
            .map(|b| b.succeeded + b.failed + b.pending)
            .max()
            .unwrap_or(0);
        // Rounded up, so a bar of one is visible however tall the others are.
        let scale = |n: i64| {
            if max == 0 {
                0
            } else {
                (n * PLOT_HEIGHT + max - 1) / max
            }
        };
        let bars = buckets
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let ok_height = scale(b.succeeded);
                let failed_height = scale(b.failed).min(PLOT_HEIGHT - ok_height);
                let pending_height = scale(b.pending).min(PLOT_HEIGHT - ok_height - failed_height);
                Bar {
                    x: i as i64 * step + 2,
                    width: step - 4,
                    label: format!(
                        "{}: {} succeeded, {} failed, {} pending",
                        labels[i].1, b.succeeded, b.failed, b.pending
                    ),
                    ok_y: PLOT_HEIGHT - ok_height,
                    ok_height,
                    failed_y: PLOT_HEIGHT - ok_height - failed_height,
                    failed_height,
                    pending_y: PLOT_HEIGHT - ok_height - failed_height - pending_height,
                    pending_height,
                }
            })
            .collect();
        let ticks = buckets
            .iter()
            .enumerate()
            .filter(|(i, _)| i % tick_every == 0)
            .map(|(i, _)| Tick {
                x: i as i64 * step + 2,
                text: labels[i].0.clone(),
            })
            .collect();
        let (ok, failed, pending) = buckets.iter().fold((0, 0, 0), |(ok, failed, pending), b| {
            (ok + b.succeeded, failed + b.failed, pending + b.pending)
        });
        Chart {
            id,
            title: title.to_owned(),
            description: format!(
                "Stacked bars per {}: {ok} attempts succeeded, {failed} failed, {pending} deliveries pending in all. \
                 The table below gives each {}.",
                unit.to_lowercase(),
                unit.to_lowercase()
            ),
            width: buckets.len() as i64 * step,
            height: PLOT_HEIGHT + LABEL_ROOM,
            plot_height: PLOT_HEIGHT,
            bars,
            ticks,
            rows: buckets
                .iter()
                .zip(&labels)
                .map(|(b, (_, long))| Row {
                    label: long.clone(),
                    succeeded: b.succeeded,
                    failed: b.failed,
                    pending: b.pending,
                })
                .collect(),
            unit,
        }
    }
}

/// Each bucket's start in `timezone`, short (`tick`) and long (`long`).
fn labels(buckets: &[Bucket], timezone: Tz, tick: &str, long: &str) -> Vec<(String, String)> {
    buckets
        .iter()
        .map(|b| {
            let local = b.start.with_timezone(&timezone);
            (local.format(tick).to_string(), local.format(long).to_string())
        })
        .collect()
}
