//! SCIM request bodies in, SCIM resources out.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use scim::ScimError;
use serde_json::Value;

use crate::AppState;
use crate::error::ApiError;

/// RFC 7644 §3.1; `application/json` is accepted on input as well.
pub const SCIM_CONTENT_TYPE: &str = "application/scim+json";

/// A request body parsed as JSON; anything unparsable, or nested deeper
/// than the limit, is 400 `invalidSyntax`, and a body over the size limit
/// 413.
#[derive(Debug)]
pub struct ScimJson(pub Value);

impl FromRequest<AppState> for ScimJson {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(request, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ScimError::new(413, None, format!("the request body is too large: {rejection}"))
            } else {
                ScimError::invalid_syntax(format!("cannot read the request body: {rejection}"))
            }
        })?;
        let body = parse_json(&bytes)?;
        state.limits.check_depth(&body)?;
        Ok(ScimJson(body))
    }
}

/// A request body as JSON; 400 `invalidSyntax` if it is not.
pub fn parse_json(bytes: &[u8]) -> Result<Value, ScimError> {
    serde_json::from_slice(bytes)
        .map_err(|err| ScimError::invalid_syntax(format!("the request body is not valid JSON: {err}")))
}

/// The base URL resources are located under: the configured public URL, or
/// else the scheme and host the client used.
#[derive(Debug)]
pub struct BaseUrl(pub String);

impl FromRequestParts<AppState> for BaseUrl {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(url) = &state.public_url {
            return Ok(BaseUrl(url.to_string()));
        }
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let host = header(header::HOST.as_str())
            .or_else(|| parts.uri.authority().map(|a| a.as_str()))
            .ok_or_else(|| ScimError::invalid_syntax("the request has no Host header"))?;
        let scheme = header("x-forwarded-proto").unwrap_or("http");
        Ok(BaseUrl(format!("{scheme}://{host}")))
    }
}

impl BaseUrl {
    /// The SCIM base URL of a directory, `{base}/scim/v2/{directory_id}`.
    pub fn directory(&self, directory_id: &str) -> String {
        format!("{}/scim/v2/{directory_id}", self.0)
    }
}

/// A rendered SCIM resource with its status, ETag and, for 201, Location.
#[derive(Debug)]
pub struct ScimResource {
    pub status: StatusCode,
    pub body: Value,
    pub version: i64,
    pub location: String,
}

impl IntoResponse for ScimResource {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.body.to_string()).into_response();
        resource_headers(&mut response, self.version, &self.location);
        response
    }
}

/// The headers of a response carrying one resource: its Content-Type, its
/// ETag and, on 201, its Location.
pub fn resource_headers(response: &mut Response, version: i64, location: &str) {
    let created = response.status() == StatusCode::CREATED;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_CONTENT_TYPE));
    if let Ok(etag) = HeaderValue::from_str(&scim::meta::etag(version)) {
        headers.insert(header::ETAG, etag);
    }
    if created && let Ok(location) = HeaderValue::from_str(location) {
        headers.insert(header::LOCATION, location);
    }
}

/// 304 Not Modified for a resource at `version`: its ETag and no body
/// (RFC 7232 §4.1).
pub fn not_modified(version: i64) -> Response {
    without_body(StatusCode::NOT_MODIFIED, version)
}

/// An answer about a resource at `version` that carries its ETag and no
/// body (304, or 204 after a write).
pub fn without_body(status: StatusCode, version: i64) -> Response {
    let mut response = status.into_response();
    if let Ok(etag) = HeaderValue::from_str(&scim::meta::etag(version)) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}

/// A SCIM body that is not a resource (a ListResponse, a discovery resource).
#[derive(Debug)]
pub struct ScimBody(pub Value);

impl IntoResponse for ScimBody {
    fn into_response(self) -> Response {
        let mut response = self.0.to_string().into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_CONTENT_TYPE));
        response
    }
}
