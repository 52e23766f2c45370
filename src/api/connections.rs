//! Connections over the API: the partner contracts a webhook can be limited to. The
//! same rules and audit entries as the Connections page (both go through the service).

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};

use super::webhooks::actor;
use super::{ApiError, Caller, ErrorBody, read_json};
use crate::models::connection::Connection;
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
    let rows = state
        .db(move |conn| {
            Connection::list(conn, tenant_id)?
                .into_iter()
                .map(|c| {
                    let webhooks = Connection::webhook_count(conn, tenant_id, c.id)?;
                    Ok(ConnectionJson {
                        id: c.id,
                        name: c.name,
                        external_id: c.external_id,
                        webhooks,
                    })
                })
                .collect::<Result<Vec<_>, crate::error::AppError>>()
        })
        .await?;
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
    let name =
        crate::web::connections::check_text("name", &body.name).map_err(|m| ApiError::invalid("name", m))?;
    let external_id = crate::web::connections::check_text("contract id", &body.external_id)
        .map_err(|m| ApiError::invalid("external_id", m))?;
    let (tenant_id, actor) = (tenant.id, actor(&caller));
    let connection = state
        .db(move |conn| crate::web::connections::add(conn, tenant_id, &name, &external_id, &actor))
        .await?;
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
    let (tenant_id, id, actor) = (tenant.id, id.into_inner(), actor(&caller));
    state
        .db(move |conn| crate::web::connections::remove(conn, tenant_id, id, &actor))
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
