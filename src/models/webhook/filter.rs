//! The webhook table's filters, sort and pages: what the query string says and the query
//! it makes.

use diesel::pg::Pg;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::{Scope, Status, Webhook};
use crate::schema::webhooks;

/// Rows on one page of the webhook table.
pub const PAGE_SIZE: i64 = 50;

/// The filters of the webhook table, as they appear in its query string. [`Filter::check`]
/// names a value that does not parse: the API refuses it (422), the page shows the message
/// and the table without that filter, so a bookmarked link never breaks the page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Filter {
    /// Part of the endpoint URL, any case.
    pub url: String,
    /// An event code the webhook subscribes to.
    pub event: String,
    /// `active`, `inactive` or `auto_disabled`.
    pub status: String,
    /// A connection id, or `none` for webhooks without one.
    pub connection: String,
    /// `number`, `url`, `events`, `errors` or `status`; a leading `-` sorts descending.
    pub sort: String,
    pub page: String,
}

/// The sortable columns.
pub const SORT_KEYS: [&str; 5] = ["number", "url", "events", "errors", "status"];

impl Filter {
    pub fn page(&self) -> i64 {
        self.page
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|p| (1..=1_000_000).contains(p))
            .unwrap_or(1)
    }

    /// The sort column and whether it is descending.
    pub fn sort(&self) -> (&'static str, bool) {
        let descending = self.sort.starts_with('-');
        let key = self.sort.trim_start_matches('-');
        match SORT_KEYS.iter().find(|k| **k == key) {
            Some(key) => (key, descending),
            None => ("number", false),
        }
    }

    pub fn status(&self) -> Option<Status> {
        self.status.parse().ok()
    }

    /// The same view without one parameter (the one [`Filter::check`] named).
    pub fn without(mut self, field: &str) -> Filter {
        match field {
            "url" => self.url.clear(),
            "event" => self.event.clear(),
            "status" => self.status.clear(),
            "connection" => self.connection.clear(),
            "sort" => self.sort.clear(),
            "page" => self.page.clear(),
            _ => {}
        }
        self
    }

    /// The first value that does not parse, as (query parameter, message).
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if !self.status.is_empty() {
            self.status
                .parse::<Status>()
                .map_err(|message| ("status", message))?;
        }
        let key = self.sort.strip_prefix('-').unwrap_or(&self.sort);
        if !key.is_empty() && !SORT_KEYS.contains(&key) {
            return Err((
                "sort",
                format!(
                    "`{}` is not a sort order (use {}, with a leading - to sort descending).",
                    self.sort,
                    SORT_KEYS.join(", ")
                ),
            ));
        }
        if !matches!(self.connection.as_str(), "" | "none") && self.connection.parse::<i64>().is_err() {
            return Err((
                "connection",
                format!("`{}` is not a connection id (or `none`).", self.connection),
            ));
        }
        if !self.page.trim().is_empty()
            && !self
                .page
                .trim()
                .parse::<i64>()
                .is_ok_and(|p| (1..=1_000_000).contains(&p))
        {
            return Err(("page", format!("`{}` is not a page number.", self.page)));
        }
        Ok(())
    }

    pub fn is_filtered(&self) -> bool {
        !self.url.trim().is_empty()
            || !self.event.is_empty()
            || self.status().is_some()
            || !self.connection.is_empty()
    }

    /// The query string of this view (empty values left out), e.g. for the export link.
    pub fn query(&self) -> String {
        self.query_with(None, None)
    }

    /// The query string with another sort or page.
    pub fn query_with(&self, sort: Option<&str>, page: Option<i64>) -> String {
        let page = page.unwrap_or_else(|| self.page());
        let sort = sort.map(str::to_owned).unwrap_or_else(|| self.sort.clone());
        let page_text = page.to_string();
        let pairs = [
            ("url", self.url.trim()),
            ("event", self.event.as_str()),
            ("status", self.status.as_str()),
            ("connection", self.connection.as_str()),
            ("sort", sort.as_str()),
            ("page", if page > 1 { page_text.as_str() } else { "" }),
        ];
        let kept: Vec<(&str, &str)> = pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        serde_urlencoded::to_string(kept).unwrap_or_default()
    }
}

/// One page of the table.
pub struct Page {
    pub rows: Vec<Webhook>,
    pub total: i64,
    pub page: i64,
    pub pages: i64,
}

/// `%` and `_` typed by a person are literal characters, not wildcards.
fn like_pattern(text: &str) -> String {
    let escaped = text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}

/// The webhooks a scope sees: a tenant's, or one connection's of it.
pub(super) fn scoped(scope: Scope) -> webhooks::BoxedQuery<'static, Pg> {
    let query = webhooks::table
        .filter(webhooks::tenant_id.eq(scope.tenant_id))
        .into_boxed();
    match scope.connection_id {
        Some(connection_id) => query.filter(webhooks::connection_id.eq(connection_id)),
        None => query,
    }
}

pub(super) fn filtered(scope: Scope, filter: &Filter) -> webhooks::BoxedQuery<'static, Pg> {
    let mut query = scoped(scope);
    let url = filter.url.trim();
    if !url.is_empty() {
        query = query.filter(webhooks::url.ilike(like_pattern(url)));
    }
    if !filter.event.is_empty() {
        query = query.filter(webhooks::events.contains(vec![Some(filter.event.clone())]));
    }
    if let Some(status) = filter.status() {
        query = query.filter(webhooks::status.eq(status.as_str()));
    }
    match filter.connection.as_str() {
        "" => {}
        "none" => query = query.filter(webhooks::connection_id.is_null()),
        id => {
            if let Ok(id) = id.parse::<i64>() {
                query = query.filter(webhooks::connection_id.eq(id));
            }
        }
    }
    query
}

pub(super) fn sorted(
    query: webhooks::BoxedQuery<'static, Pg>,
    filter: &Filter,
) -> webhooks::BoxedQuery<'static, Pg> {
    let (key, descending) = filter.sort();
    match (key, descending) {
        ("url", false) => query.order((webhooks::url.asc(), webhooks::number.asc())),
        ("url", true) => query.order((webhooks::url.desc(), webhooks::number.asc())),
        ("events", false) => query.order((webhooks::event_count.asc(), webhooks::number.asc())),
        ("events", true) => query.order((webhooks::event_count.desc(), webhooks::number.asc())),
        ("errors", false) => query.order((webhooks::error_count.asc(), webhooks::number.asc())),
        ("errors", true) => query.order((webhooks::error_count.desc(), webhooks::number.asc())),
        ("status", false) => query.order((webhooks::status.asc(), webhooks::number.asc())),
        ("status", true) => query.order((webhooks::status.desc(), webhooks::number.asc())),
        (_, true) => query.order(webhooks::number.desc()),
        _ => query.order(webhooks::number.asc()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_round_trip_through_the_query_string() {
        let filter = Filter {
            url: " zapier ".into(),
            event: "booking.created".into(),
            sort: "-errors".into(),
            page: "3".into(),
            ..Filter::default()
        };
        assert_eq!(
            filter.query(),
            "url=zapier&event=booking.created&sort=-errors&page=3"
        );
        assert_eq!(
            filter.query_with(Some("url"), Some(1)),
            "url=zapier&event=booking.created&sort=url"
        );
        assert_eq!(filter.sort(), ("errors", true));
        let junk = Filter {
            sort: "drop table".into(),
            page: "-4".into(),
            status: "bogus".into(),
            ..Filter::default()
        };
        assert_eq!(
            (junk.sort(), junk.page(), junk.status()),
            (("number", false), 1, None)
        );
        assert_eq!(junk.check().unwrap_err().0, "status");
        assert!(filter.check().is_ok());
        for (field, bad) in [
            (
                "sort",
                Filter {
                    sort: "-colour".into(),
                    ..Filter::default()
                },
            ),
            (
                "connection",
                Filter {
                    connection: "abc".into(),
                    ..Filter::default()
                },
            ),
            (
                "page",
                Filter {
                    page: "0".into(),
                    ..Filter::default()
                },
            ),
        ] {
            assert_eq!(bad.check().unwrap_err().0, field);
        }
    }

    #[test]
    fn typed_wildcards_are_literal() {
        assert_eq!(like_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
    }
}
