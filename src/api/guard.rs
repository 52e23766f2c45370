//! What every `/api/` request goes through before its handler: the rate limit per API key
//! (`HOOKBOARD_API_RATE_LIMIT` per second, burst twice that; 429 with `Retry-After`), and
//! the `Idempotency-Key` header on POSTs (the same key and body within 24 hours gets the
//! first answer again).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, ResponseError, web};
use sha2::{Digest, Sha256};

use super::{ApiError, Caller};
use crate::models::idempotency::{Reservation, StoredAnswer};
use crate::state::AppState;

/// Token buckets by API key (keyed by a hash of the key, never the key itself).
pub struct RateLimiter {
    per_second: f64,
    buckets: Mutex<HashMap<[u8; 16], (f64, Instant)>>,
}

impl RateLimiter {
    pub fn new(per_second: u32) -> Self {
        RateLimiter {
            per_second: f64::from(per_second),
            buckets: Mutex::default(),
        }
    }

    /// `Ok` when the key may go on, or how many seconds to wait.
    pub fn take(&self, token: &str, now: Instant) -> Result<(), u64> {
        if self.per_second <= 0.0 {
            return Ok(());
        }
        let capacity = self.per_second * 2.0;
        let id: [u8; 16] = Sha256::digest(token.as_bytes())[..16]
            .try_into()
            .expect("16 bytes");
        let mut buckets = self.buckets.lock().expect("rate limiter lock");
        if buckets.len() > 100_000 {
            // Forget idle keys rather than grow without bound.
            buckets.retain(|_, (_, at)| now.duration_since(*at).as_secs_f64() < 2.0);
        }
        let (tokens, at) = buckets.entry(id).or_insert((capacity, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.per_second).min(capacity);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / self.per_second).ceil().max(1.0) as u64)
        }
    }
}

fn refuse(req: ServiceRequest, error: ApiError) -> ServiceResponse<BoxBody> {
    let (req, _) = req.into_parts();
    ServiceResponse::new(req, error.error_response())
}

pub async fn guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let token = super::bearer(req.headers());
    if let (Some(token), Some(limiter)) = (&token, req.app_data::<web::Data<RateLimiter>>())
        && let Err(wait) = limiter.take(token, Instant::now())
    {
        let error = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("Too many requests with this API key; retry in {wait} s."),
        );
        let mut response = refuse(req, error);
        response
            .headers_mut()
            .insert(actix_web::http::header::RETRY_AFTER, wait.into());
        return Ok(response);
    }
    let key = req
        .headers()
        .get("Idempotency-Key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (Some(key), Some(_), true) = (key, token, req.method() == Method::POST) else {
        return next.call(req).await.map(ServiceResponse::map_into_boxed_body);
    };
    if key.is_empty() || key.chars().count() > 200 {
        return Ok(refuse(
            req,
            ApiError::invalid(
                "Idempotency-Key",
                "The Idempotency-Key header must have 1 to 200 characters.",
            ),
        ));
    }
    let state = req.app_data::<web::Data<AppState>>().cloned().expect("app state");
    // Only tenant keys publish or change things; anything else is refused by the handler,
    // which finds the caller resolved here instead of looking the key up again.
    let tenant_id = match super::authenticate(req.request().clone()).await {
        Ok(caller) => {
            let tenant_id = match &caller {
                Caller::Tenant { key, .. } => Some(key.tenant_id),
                Caller::Webhook { .. } => None,
            };
            req.extensions_mut().insert(caller);
            tenant_id
        }
        Err(_) => None,
    };
    let Some(tenant_id) = tenant_id else {
        return next.call(req).await.map(ServiceResponse::map_into_boxed_body);
    };
    let headers = req.headers().clone();
    let body = match super::read_body(&headers, req.take_payload()).await {
        Ok(body) => body,
        Err(error) => return Ok(refuse(req, error)),
    };
    let mut hasher = Sha256::new();
    hasher.update(req.method().as_str());
    hasher.update(b" ");
    hasher.update(req.uri().to_string());
    hasher.update(b"\n");
    hasher.update(&body);
    let request_hash = hex::encode(hasher.finalize());
    req.set_payload(actix_http::Payload::from(body));
    let now = state.clock.now();
    let (reserve_key, reserve_hash) = (key.clone(), request_hash.clone());
    let reservation = state
        .db(move |conn| {
            Ok(StoredAnswer::reserve(
                conn,
                tenant_id,
                &reserve_key,
                &reserve_hash,
                now,
            )?)
        })
        .await;
    let mismatch = || {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_mismatch",
            "This Idempotency-Key was used for a different request in the last 24 hours; use a new key.",
        )
    };
    match reservation {
        Ok(Reservation::Mine) => {}
        Ok(Reservation::Answered(earlier)) => {
            if earlier.request_hash != request_hash {
                return Ok(refuse(req, mismatch()));
            }
            let (req, _) = req.into_parts();
            let response =
                HttpResponse::build(StatusCode::from_u16(earlier.status as u16).unwrap_or(StatusCode::OK))
                    .content_type("application/json")
                    .insert_header(("Idempotent-Replayed", "true"))
                    .body(earlier.body);
            return Ok(ServiceResponse::new(req, response));
        }
        Ok(Reservation::InProgress { request_hash: theirs }) => {
            if theirs != request_hash {
                return Ok(refuse(req, mismatch()));
            }
            let error = ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_in_progress",
                "A request with this Idempotency-Key is still being answered; send it again in a moment to get its answer.",
            );
            let mut response = refuse(req, error);
            response.headers_mut().insert(
                actix_web::http::header::RETRY_AFTER,
                actix_web::http::header::HeaderValue::from_static("1"),
            );
            return Ok(response);
        }
        // 503 with Retry-After when the database is unreachable (ApiError's own mapping).
        Err(err) => return Ok(refuse(req, ApiError::from(err))),
    }
    let response = next.call(req).await?;
    let status = response.status();
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        // Nothing was done (or we cannot tell): the key goes back so a retry runs.
        let released = state
            .db(move |conn| Ok(StoredAnswer::release(conn, tenant_id, &key, &request_hash)?))
            .await;
        if let Err(err) = released {
            tracing::warn!(error = %err, "could not give back an idempotency key");
        }
        return Ok(response.map_into_boxed_body());
    }
    let (req, response) = response.into_parts();
    let (head, body) = response.into_parts();
    let bytes = actix_web::body::to_bytes(body)
        .await
        .map_err(|_| actix_web::error::ErrorInternalServerError("response body"))?;
    let answer = StoredAnswer {
        tenant_id,
        key,
        request_hash,
        status: i32::from(status.as_u16()),
        body: String::from_utf8_lossy(&bytes).into_owned(),
        created_at: now,
    };
    if let Err(err) = state
        .db(move |conn| Ok(StoredAnswer::finish(conn, &answer)?))
        .await
    {
        tracing::warn!(error = %err, "could not keep the idempotent answer");
    }
    let response = head.set_body(bytes).map_into_boxed_body();
    Ok(ServiceResponse::new(req, response))
}
