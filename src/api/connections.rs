//! Connections over the API: the partner contracts a webhook can be limited to. The
//! same rules and audit entries as the Connections page (both go through the service).

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::webhooks::actor;
use super::{ApiError, Caller, ErrorBody, read_json};
use crate::services;
use crate::state::AppState;

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Connection, example = json!({"id": 7, "name": "Alpine Adventures", "external_id": "CT-001", "webhooks": 2}))]
pub struct ConnectionJson {
    id: i64,
    name: String,
    /// The contract id events name in `connection`.
    external_id: String,
    /// Webhooks that use it.
    webhooks: i64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ConnectionList {
    connections: Vec<ConnectionJson>,
}

/// List connections
///
/// Connections are the partner contracts events can be limited to.
#[utoipa::path(
    get, path = "/api/v1/connections", tag = "Connections", operation_id = "listConnections",
    responses((status = 200, description = "All connections", body = ConnectionList)),
)]
pub async fn list(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let tenant_id = caller.reader()?.id;
    let rows = services::connections::list(&state, tenant_id)
        .await?
        .into_iter()
        .map(|listed| ConnectionJson {
            id: listed.connection.id,
            name: listed.connection.name,
            external_id: listed.connection.external_id,
            webhooks: listed.webhooks,
        })
        .collect();
    Ok(HttpResponse::Ok().json(ConnectionList { connections: rows }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "Alpine Adventures", "external_id": "CT-001"}))]
pub struct ConnectionBody {
    /// 1 to 200 characters.
    name: String,
    /// The contract id, unique in your account; 1 to 200 characters.
    external_id: String,
}

/// Add a connection
#[utoipa::path(
    post, path = "/api/v1/connections", tag = "Connections", operation_id = "createConnection",
    request_body = ConnectionBody,
    responses((status = 201, description = "Created", body = ConnectionJson)),
)]
pub async fn create_connection(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: Caller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.writer()?.clone();
    let body: ConnectionBody = read_json(&req, payload).await?;
    let connection =
        services::connections::add(&state, tenant.id, &body.name, &body.external_id, actor(&caller)).await?;
    Ok(HttpResponse::Created().json(ConnectionJson {
        id: connection.id,
        name: connection.name,
        external_id: connection.external_id,
        webhooks: 0,
    }))
}

/// Delete a connection
///
/// Refused while webhooks use it.
#[utoipa::path(
    delete, path = "/api/v1/connections/{id}", tag = "Connections", operation_id = "deleteConnection",
    params(("id" = i64, Path, description = "The connection id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 409, description = "Webhooks still use it", body = ErrorBody),
    ),
)]
pub async fn delete_connection(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<i64>,
) -> Result<HttpResponse, ApiError> {
    let tenant = caller.writer()?.clone();
    services::connections::remove(&state, tenant.id, id.into_inner(), actor(&caller)).await?;
    Ok(HttpResponse::NoContent().finish())
}
