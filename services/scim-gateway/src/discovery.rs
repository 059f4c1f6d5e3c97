//! The discovery endpoints (RFC 7644 §4) under each directory's base URL:
//! `/ServiceProviderConfig`, `/Schemas`, `/Schemas/{id}`, `/ResourceTypes`
//! and `/ResourceTypes/{id}`, rendered by [`scim::discovery`] from the
//! schema definitions the services validate against.
//!
//! Discovery needs the directory's bearer token, like every other path under
//! a directory's base URL. RFC 7644 §4 lets a provider serve it without
//! authentication, but the IdPs idmesh serves (Okta, Entra ID, OneLogin)
//! send the token on discovery anyway, the answers are the same for every
//! directory so a client gains nothing by skipping the token, and one rule
//! for the whole base URL leaves no unauthenticated path to reason about.

use axum::extract::{Path, Query};
use scim::ScimError;
use scim::discovery::{AuthenticationScheme, BEARER_TOKEN_SPEC_URI, Features, Pagination, ServiceProvider};
use scim::list::ListQuery;
use scim::schema::{GROUP_RESOURCE, USER_RESOURCE};

use crate::error::ApiError;
use crate::response::{BaseUrl, ScimBody};

/// The bearer tokens `idmesh token issue` hands out, one set per directory.
static BEARER_TOKEN: AuthenticationScheme = AuthenticationScheme {
    kind: "oauthbearertoken",
    name: "OAuth Bearer Token",
    description: "Authentication with a bearer token issued for this directory (idmesh token issue).",
    spec_uri: Some(BEARER_TOKEN_SPEC_URI),
    primary: true,
};

/// What this gateway implements, flag by flag, and the resource types it
/// serves.
static SERVICE_PROVIDER: ServiceProvider = ServiceProvider {
    features: Features {
        patch: true,
        bulk: Some(crate::bulk::LIMITS),
        filter_max_results: Some(scim::list::MAX_COUNT),
        // Passwords are written by PUT and PATCH and stored hashed.
        change_password: true,
        sort: true,
        etag: true,
        pagination: Some(Pagination {
            cursor: true,
            index: true,
            default_method: "index",
            default_page_size: scim::list::DEFAULT_COUNT,
            max_page_size: scim::list::MAX_COUNT,
        }),
        authentication_schemes: std::slice::from_ref(&BEARER_TOKEN),
    },
    resource_types: &[&USER_RESOURCE, &GROUP_RESOURCE],
};

/// Query parameters on discovery endpoints: RFC 7644 §4 says filtering,
/// sorting and paging are ignored there, and that a filter SHOULD be
/// answered with 403 so that no client believes it was applied. Anything
/// that is not a SCIM query parameter is 400, as on every endpoint.
fn check_query(params: &[(String, String)]) -> Result<(), ApiError> {
    let query = ListQuery::from_pairs(params.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    if query.filter.is_some() {
        return Err(ScimError::new(403, None, "discovery endpoints cannot be filtered (RFC 7644 §4)").into());
    }
    Ok(())
}

pub async fn service_provider_config(
    Path(directory_id): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
    base: BaseUrl,
) -> Result<ScimBody, ApiError> {
    check_query(&params)?;
    Ok(ScimBody(
        SERVICE_PROVIDER.service_provider_config(&base.directory(&directory_id)),
    ))
}

pub async fn schemas(
    Path(directory_id): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
    base: BaseUrl,
) -> Result<ScimBody, ApiError> {
    check_query(&params)?;
    Ok(ScimBody(SERVICE_PROVIDER.schemas_list(&base.directory(&directory_id))))
}

pub async fn schema(
    Path((directory_id, id)): Path<(String, String)>,
    Query(params): Query<Vec<(String, String)>>,
    base: BaseUrl,
) -> Result<ScimBody, ApiError> {
    check_query(&params)?;
    Ok(ScimBody(SERVICE_PROVIDER.schema(&id, &base.directory(&directory_id))?))
}

pub async fn resource_types(
    Path(directory_id): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
    base: BaseUrl,
) -> Result<ScimBody, ApiError> {
    check_query(&params)?;
    Ok(ScimBody(
        SERVICE_PROVIDER.resource_types_list(&base.directory(&directory_id)),
    ))
}

pub async fn resource_type(
    Path((directory_id, id)): Path<(String, String)>,
    Query(params): Query<Vec<(String, String)>>,
    base: BaseUrl,
) -> Result<ScimBody, ApiError> {
    check_query(&params)?;
    Ok(ScimBody(
        SERVICE_PROVIDER.resource_type(&id, &base.directory(&directory_id))?,
    ))
}
