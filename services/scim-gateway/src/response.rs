//! SCIM request bodies in, SCIM resources out.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use idmesh_proto::v1::User;
use scim::ScimError;
use scim::attributes::Projection;
use scim::meta::Meta;
use scim::schema::USER_RESOURCE;
use serde_json::Value;

use crate::AppState;
use crate::error::ApiError;

/// RFC 7644 §3.1; `application/json` is accepted on input as well.
pub const SCIM_CONTENT_TYPE: &str = "application/scim+json";

/// A request body parsed as JSON; anything unparsable is 400 `invalidSyntax`.
#[derive(Debug)]
pub struct ScimJson(pub Value);

impl<S: Send + Sync> FromRequest<S> for ScimJson {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| ScimError::invalid_syntax(format!("cannot read the request body: {rejection}")))?;
        serde_json::from_slice(&bytes)
            .map(ScimJson)
            .map_err(|err| ScimError::invalid_syntax(format!("the request body is not valid JSON: {err}")).into())
    }
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
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_CONTENT_TYPE));
        if let Ok(etag) = HeaderValue::from_str(&scim::meta::etag(self.version)) {
            headers.insert(header::ETAG, etag);
        }
        if self.status == StatusCode::CREATED
            && let Ok(location) = HeaderValue::from_str(&self.location)
        {
            headers.insert(header::LOCATION, location);
        }
        response
    }
}

/// 304 Not Modified for a resource at `version`: its ETag and no body
/// (RFC 7232 §4.1).
pub fn not_modified(version: i64) -> Response {
    let mut response = StatusCode::NOT_MODIFIED.into_response();
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

/// Renders a user as its SCIM resource, located under `base`, carrying
/// what `projection` asks for.
pub fn render_user(
    base: &BaseUrl,
    user: User,
    status: StatusCode,
    projection: &Projection,
) -> Result<ScimResource, ApiError> {
    let meta = user.meta.unwrap_or_default();
    let instant = |ts: Option<prost_types::Timestamp>| {
        ts.as_ref()
            .and_then(idmesh_runtime::timestamp::from_proto)
            .ok_or_else(|| ApiError(ScimError::internal()))
    };
    let location = format!("{}/Users/{}", base.directory(&user.directory_id), user.id);
    let doc = idmesh_runtime::struct_json::from_struct(user.resource.unwrap_or_default());
    let mut body = scim::meta::render(
        &doc,
        &user.id,
        &Meta {
            resource_type: "User",
            created: instant(meta.created)?,
            last_modified: instant(meta.last_modified)?,
            version: meta.version,
            location: location.clone(),
        },
    );
    projection.apply(&mut body, &USER_RESOURCE);
    Ok(ScimResource {
        status,
        body,
        version: meta.version,
        location,
    })
}
