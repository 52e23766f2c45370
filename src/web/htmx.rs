//! htmx on the server: what a request says about itself (`HX-Request`, `HX-Target`,
//! `HX-Current-URL`) and the answers that steer the swap (`HX-Retarget`, `HX-Reswap`,
//! `HX-Trigger`), so handlers never build these headers by hand.

use std::convert::Infallible;
use std::future::{Ready, ready};

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpRequest, HttpResponse};
use askama::Template;

use super::views::Toast;

/// What htmx tells about a request; `is_htmx` is false for ordinary page loads.
#[derive(Debug, Clone, Default)]
pub struct Hx {
    pub is_htmx: bool,
    /// The id of the element that asked (`HX-Target`).
    pub target: Option<String>,
    /// The page the browser shows (`HX-Current-URL`).
    pub current_url: Option<url::Url>,
}

impl Hx {
    pub fn of(req: &HttpRequest) -> Hx {
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Hx {
            is_htmx: req.headers().contains_key("HX-Request"),
            target: header("HX-Target"),
            current_url: header("HX-Current-URL").and_then(|u| url::Url::parse(&u).ok()),
        }
    }

    /// Whether htmx asked to fill the element with this id.
    pub fn targets(&self, id: &str) -> bool {
        self.is_htmx && self.target.as_deref() == Some(id)
    }

    /// The query string of the page the browser shows, when that page has this path.
    pub fn current_query(&self, path: &str) -> Option<String> {
        self.current_url
            .as_ref()
            .filter(|u| u.path() == path)
            .map(|u| u.query().unwrap_or("").to_owned())
    }
}

impl FromRequest for Hx {
    type Error = Infallible;
    type Future = Ready<Result<Hx, Infallible>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(Hx::of(req)))
    }
}

/// An HTML fragment for htmx, with the headers that steer where it goes.
pub struct Fragment {
    status: StatusCode,
    body: String,
    retarget: Option<(String, &'static str)>,
    reswap: Option<&'static str>,
    trigger: Option<&'static str>,
}

impl Fragment {
    pub fn new(body: String) -> Fragment {
        Fragment {
            status: StatusCode::OK,
            body,
            retarget: None,
            reswap: None,
            trigger: None,
        }
    }

    /// A rendered template as a fragment.
    pub fn of(template: &impl Template) -> Result<Fragment, crate::error::AppError> {
        Ok(Fragment::new(template.render().map_err(anyhow::Error::from)?))
    }

    /// Only out-of-band swaps (toasts, dialogs): the element that asked stays as it is.
    pub fn oob_only(body: String) -> Fragment {
        Fragment::new(body).swap("none")
    }

    pub fn status(mut self, status: StatusCode) -> Fragment {
        self.status = status;
        self
    }

    /// Swap into `selector` instead of the element that asked.
    pub fn retarget(mut self, selector: impl Into<String>, swap: &'static str) -> Fragment {
        self.retarget = Some((selector.into(), swap));
        self
    }

    pub fn swap(mut self, swap: &'static str) -> Fragment {
        self.reswap = Some(swap);
        self
    }

    /// Fires this event on the page after the swap (e.g. the log reloads itself).
    pub fn trigger(mut self, event: &'static str) -> Fragment {
        self.trigger = Some(event);
        self
    }

    /// Appends more HTML (usually out-of-band swaps).
    pub fn and(mut self, more: &str) -> Fragment {
        self.body.push_str(more);
        self
    }

    pub fn and_toast(self, message: &str) -> Fragment {
        let toast = toast_oob(message);
        self.and(&toast)
    }

    pub fn into_response(self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        response.content_type("text/html; charset=utf-8");
        if let Some((selector, swap)) = &self.retarget {
            response.insert_header(("HX-Retarget", selector.as_str()));
            response.insert_header(("HX-Reswap", *swap));
        } else if let Some(swap) = self.reswap {
            response.insert_header(("HX-Reswap", swap));
        }
        if let Some(event) = self.trigger {
            response.insert_header(("HX-Trigger", event));
        }
        response.body(self.body)
    }
}

impl From<Fragment> for HttpResponse {
    fn from(fragment: Fragment) -> HttpResponse {
        fragment.into_response()
    }
}

/// Whether a request comes from htmx (and so wants a fragment, not a page).
pub fn is_htmx(req: &HttpRequest) -> bool {
    req.headers().contains_key("HX-Request")
}

/// Empties the dialog out of band.
pub const CLOSE_DIALOG: &str = r#"<div id="dialog" hx-swap-oob="innerHTML"></div>"#;

/// A success toast appended to `#toasts` out of band.
pub fn toast_oob(message: &str) -> String {
    let toast = Toast {
        kind: "success",
        message,
    }
    .render()
    .unwrap_or_default();
    format!(r#"<div id="toasts" hx-swap-oob="beforeend">{toast}</div>"#)
}

/// An error toast in `#toasts`, instead of a broken swap.
pub fn error_toast(status: StatusCode, message: &str) -> HttpResponse {
    let body = Toast {
        kind: "error",
        message,
    }
    .render()
    .unwrap_or_else(|_| message.to_owned());
    Fragment::new(body)
        .status(status)
        .retarget("#toasts", "beforeend")
        .into_response()
}
