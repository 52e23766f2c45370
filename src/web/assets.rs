//! Static assets, compiled into the binary so Hookboard runs from any directory.

use actix_web::{HttpResponse, http::header, web};

struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $type:literal) => {
        Asset {
            path: $path,
            content_type: $type,
            body: include_bytes!(concat!("../../static/", $path)),
        }
    };
}

const ASSETS: &[Asset] = &[
    asset!("css/hookboard.css", "text/css; charset=utf-8"),
    asset!("img/favicon.svg", "image/svg+xml"),
    asset!("js/hookboard.js", "text/javascript; charset=utf-8"),
    asset!("vendor/htmx-2.0.11.min.js", "text/javascript; charset=utf-8"),
];

pub async fn asset(path: web::Path<String>) -> HttpResponse {
    match ASSETS.iter().find(|a| a.path == path.as_str()) {
        Some(asset) => HttpResponse::Ok()
            .content_type(asset.content_type)
            .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
            .body(asset.body),
        None => crate::web::error_page(
            actix_web::http::StatusCode::NOT_FOUND,
            "The file you asked for does not exist.",
        ),
    }
}

/// `GET /favicon.ico`, which browsers ask for whatever the page links: the icon itself.
pub async fn favicon() -> HttpResponse {
    asset(web::Path::from("img/favicon.svg".to_owned())).await
}
