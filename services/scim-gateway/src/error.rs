//! SCIM errors as HTTP responses (RFC 7644 §3.12).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use scim::ScimError;

use crate::response::SCIM_CONTENT_TYPE;

/// How long an IdP should wait before retrying after a 503.
const RETRY_AFTER_SECONDS: &str = "5";

/// A SCIM error on its way to the client.
#[derive(Debug)]
pub struct ApiError(pub ScimError);

impl From<ScimError> for ApiError {
    fn from(err: ScimError) -> Self {
        Self(err)
    }
}

impl From<tonic::Status> for ApiError {
    fn from(status: tonic::Status) -> Self {
        let err = idmesh_api::status::to_scim(&status);
        if err.status == 500 {
            // A service logs its own internal errors; this also catches what
            // tonic answered on the gateway's side (a message over the size
            // limit, a broken connection).
            tracing::error!(code = ?status.code(), message = status.message(), "a gRPC call failed");
        }
        Self(err)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, self.0.to_json().to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_CONTENT_TYPE));
        match status {
            StatusCode::UNAUTHORIZED => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"idmesh\""),
                );
            }
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
            }
            _ => {}
        }
        response
    }
}

/// 404 for any path the gateway does not serve.
pub async fn unknown_endpoint(uri: axum::http::Uri) -> ApiError {
    ApiError(ScimError::not_found(format!("no SCIM endpoint at {}", uri.path())))
}

/// 405 for a method an endpoint does not support.
pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError(ScimError::new(
        405,
        None,
        format!("{method} is not supported on {}", uri.path()),
    ))
}
