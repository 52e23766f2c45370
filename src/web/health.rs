//! Liveness and metrics for operations.

use actix_web::{HttpResponse, web};

use crate::state::AppState;

/// 200 when the database answers, 503 otherwise. Checking a connection out of the pool
/// asks the database (`SELECT 1`, the pool's test on check-out), so that is the check.
pub async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    let pool = state.pool.clone();
    let answered = web::block(move || -> anyhow::Result<()> {
        pool.get()?;
        Ok(())
    })
    .await;
    match answered {
        Ok(Ok(())) => HttpResponse::Ok().content_type("text/plain").body("ok\n"),
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "health check: the database does not answer");
            HttpResponse::ServiceUnavailable()
                .content_type("text/plain")
                .body("database unavailable\n")
        }
        Err(_) => HttpResponse::ServiceUnavailable()
            .content_type("text/plain")
            .body("busy\n"),
    }
}

pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let now = state.clock.now();
    let queue = state
        .db(move |conn| Ok(crate::models::delivery::queue_gauges(conn, now)?))
        .await
        .unwrap_or_default();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render_with(queue))
}
