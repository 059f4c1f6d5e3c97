//! Probes for Kubernetes, outside the SCIM API and without a token:
//! `/healthz` says the process is up (liveness), `/readyz` says it can serve
//! SCIM, which needs directory-service to resolve every request's token
//! (readiness).

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use idmesh_proto::v1::directory_service_server::SERVICE_NAME as DIRECTORY_SERVICE;
use serde_json::json;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;

use crate::AppState;

/// How long `/readyz` waits for directory-service's health answer: well
/// under a probe's usual one-second timeout would be too tight for a
/// reconnect, well over it would leave the probe waiting.
const READY_TIMEOUT: Duration = Duration::from_millis(800);

/// 200 while the process serves HTTP at all.
pub async fn healthz() -> Response {
    (StatusCode::OK, Json(json!({"status": "up"}))).into_response()
}

/// 200 when directory-service answers SERVING within [`READY_TIMEOUT`], else
/// 503 saying what it answered.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let request = HealthCheckRequest {
        service: DIRECTORY_SERVICE.to_owned(),
    };
    let mut health = state.directory_health.clone();
    let directory_service = match tokio::time::timeout(READY_TIMEOUT, health.check(request)).await {
        Ok(Ok(answer)) => match answer.into_inner().status() {
            ServingStatus::Serving => {
                return (StatusCode::OK, Json(json!({"status": "ready"}))).into_response();
            }
            other => other.as_str_name().to_owned(),
        },
        Ok(Err(status)) => format!("unreachable: {}", status.message()),
        Err(_) => format!("no answer within {READY_TIMEOUT:?}"),
    };
    let body = json!({"status": "not ready", "directory_service": directory_service});
    (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
}
