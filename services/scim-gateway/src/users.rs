//! `/scim/v2/{directory_id}/Users`: SCIM over HTTP ↔ `UserService` over gRPC.
//! GET, PUT, PATCH and DELETE of one user honour `If-Match` and
//! `If-None-Match` (see [`crate::conditional`]); every response carrying
//! users honours `attributes` and `excludedAttributes` (see
//! [`crate::projection`]). Lists filter, sort and page in user-service.
//! A user's readOnly `groups` comes from group-service (see
//! [`GroupsOfUsers`]) whenever the response carries it.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use idmesh_proto::v1::{
    CreateUserRequest, DeleteUserRequest, GetUserRequest, ListUsersRequest, PatchOperation, PatchUserRequest,
    ReplaceUserRequest, User,
};
use idmesh_runtime::struct_json;
use scim::ScimError;
use scim::attributes::Projection;
use scim::list::ListQuery;
use scim::schema::USER_RESOURCE;
use serde_json::Value;

use crate::AppState;
use crate::conditional::{Freshness, Preconditions};
use crate::error::ApiError;
use crate::listing::{ListSlice, Page};
use crate::members::GroupsOfUsers;
use crate::projection::AttributeQuery;
use crate::response::{BaseUrl, ScimBody, ScimJson, ScimResource, not_modified, render_user};

/// A resource body must be a JSON object.
pub fn resource(body: Value) -> Result<prost_types::Struct, ApiError> {
    match body {
        Value::Object(map) => Ok(struct_json::to_struct(&map)),
        _ => Err(ScimError::invalid_syntax("the request body must be a JSON object").into()),
    }
}

pub async fn create(
    State(state): State<AppState>,
    Path(directory_id): Path<String>,
    base: BaseUrl,
    returning: AttributeQuery,
    ScimJson(body): ScimJson,
) -> Result<ScimResource, ApiError> {
    let projection = returning.projection(&USER_RESOURCE)?;
    let request = CreateUserRequest {
        directory_id,
        resource: Some(resource(body)?),
    };
    let user = state.users.clone().create_user(request).await?.into_inner();
    // A user is created in no group.
    render_user(&base, user, Vec::new(), StatusCode::CREATED, &projection)
}

/// The version a user is at now, for preconditions that cannot be left to
/// the write's own `expected_version` check.
async fn current_version(state: &AppState, directory_id: &str, id: &str) -> Result<i64, ApiError> {
    let request = GetUserRequest {
        directory_id: directory_id.to_owned(),
        id: id.to_owned(),
    };
    let user = state.users.clone().get_user(request).await?.into_inner();
    user.meta
        .map(|meta| meta.version)
        .ok_or_else(|| ApiError(ScimError::internal()))
}

/// GET one user; `If-None-Match` naming its version is 304, `If-Match`
/// naming another is 412.
pub async fn get(
    State(state): State<AppState>,
    Path((directory_id, id)): Path<(String, String)>,
    base: BaseUrl,
    returning: AttributeQuery,
    preconditions: Preconditions,
) -> Result<Response, ApiError> {
    let projection = returning.projection(&USER_RESOURCE)?;
    let user = state
        .users
        .clone()
        .get_user(GetUserRequest { directory_id, id })
        .await?
        .into_inner();
    let rendered = render_with_groups(&state, &base, user, &projection).await?;
    Ok(match preconditions.check_read(rendered.version)? {
        Freshness::Modified => rendered.into_response(),
        Freshness::NotModified => not_modified(rendered.version),
    })
}

pub async fn list(
    State(state): State<AppState>,
    Path(directory_id): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
    base: BaseUrl,
) -> Result<ScimBody, ApiError> {
    let query = ListQuery::from_pairs(params.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    list_users(&state, directory_id, query, &base).await
}

/// `POST /Users/.search`: the query in a SearchRequest body (RFC 7644
/// §3.4.3), answered like a GET list.
pub async fn search(
    State(state): State<AppState>,
    Path(directory_id): Path<String>,
    base: BaseUrl,
    ScimJson(body): ScimJson,
) -> Result<ScimBody, ApiError> {
    let query = ListQuery::from_search_request(&body)?;
    list_users(&state, directory_id, query, &base).await
}

async fn list_users(
    state: &AppState,
    directory_id: String,
    query: ListQuery,
    base: &BaseUrl,
) -> Result<ScimBody, ApiError> {
    let page = page_of_users(state, &directory_id, &query, query.start_index, query.count, base).await?;
    Ok(page.into_body(query.start_index))
}

/// The users matching `query`'s filter and sort, `count` of them from the
/// 1-based `start_index` (which the directory-wide search chooses itself),
/// projected as `query` asks.
pub async fn page_of_users(
    state: &AppState,
    directory_id: &str,
    query: &ListQuery,
    start_index: u64,
    count: u32,
    base: &BaseUrl,
) -> Result<Page, ApiError> {
    let projection = Projection::parse(
        query.attributes.as_deref(),
        query.excluded_attributes.as_deref(),
        &USER_RESOURCE,
    )?;
    let slice = ListSlice::new(query, start_index, count)?;
    let request = ListUsersRequest {
        directory_id: directory_id.to_owned(),
        filter: slice.filter,
        page: Some(slice.page),
        sort: slice.sort,
    };
    let response = state.users.clone().list_users(request).await?.into_inner();
    let ids: Vec<&str> = response.users.iter().map(|user| user.id.as_str()).collect();
    let mut groups = GroupsOfUsers::read(
        &state.groups,
        directory_id,
        &base.directory(directory_id),
        &ids,
        &projection,
    )
    .await?;
    let resources = response
        .users
        .into_iter()
        .map(|user| {
            let groups = groups.take(&user.id);
            render_user(base, user, groups, StatusCode::OK, &projection).map(|rendered| rendered.body)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Page {
        resources,
        total: u64::try_from(response.total_results).unwrap_or_default(),
    })
}

/// Renders one user with its `groups`, read when `projection` returns them.
async fn render_with_groups(
    state: &AppState,
    base: &BaseUrl,
    user: User,
    projection: &Projection,
) -> Result<ScimResource, ApiError> {
    let mut groups = GroupsOfUsers::read(
        &state.groups,
        &user.directory_id,
        &base.directory(&user.directory_id),
        &[user.id.as_str()],
        projection,
    )
    .await?;
    let groups = groups.take(&user.id);
    render_user(base, user, groups, StatusCode::OK, projection)
}

pub async fn replace(
    State(state): State<AppState>,
    Path((directory_id, id)): Path<(String, String)>,
    base: BaseUrl,
    returning: AttributeQuery,
    preconditions: Preconditions,
    ScimJson(body): ScimJson,
) -> Result<ScimResource, ApiError> {
    let projection = returning.projection(&USER_RESOURCE)?;
    let resource = resource(body)?;
    let expected_version = preconditions
        .expected_version(current_version(&state, &directory_id, &id))
        .await?;
    let request = ReplaceUserRequest {
        directory_id,
        id,
        resource: Some(resource),
        expected_version,
    };
    let user = state.users.clone().replace_user(request).await?.into_inner();
    render_with_groups(&state, &base, user, &projection).await
}

pub async fn patch(
    State(state): State<AppState>,
    Path((directory_id, id)): Path<(String, String)>,
    base: BaseUrl,
    returning: AttributeQuery,
    preconditions: Preconditions,
    ScimJson(body): ScimJson,
) -> Result<ScimResource, ApiError> {
    let projection = returning.projection(&USER_RESOURCE)?;
    let operations = scim::patch::parse_request(&body)?
        .into_iter()
        .map(|op| PatchOperation {
            op: op.op.as_str().to_owned(),
            path: op.path.unwrap_or_default(),
            value: op.value.as_ref().map(struct_json::to_value),
        })
        .collect();
    let expected_version = preconditions
        .expected_version(current_version(&state, &directory_id, &id))
        .await?;
    let request = PatchUserRequest {
        directory_id,
        id,
        operations,
        expected_version,
    };
    let user = state.users.clone().patch_user(request).await?.into_inner();
    render_with_groups(&state, &base, user, &projection).await
}

pub async fn delete(
    State(state): State<AppState>,
    Path((directory_id, id)): Path<(String, String)>,
    preconditions: Preconditions,
) -> Result<StatusCode, ApiError> {
    let expected_version = preconditions
        .expected_version(current_version(&state, &directory_id, &id))
        .await?;
    state
        .users
        .clone()
        .delete_user(DeleteUserRequest {
            directory_id,
            id,
            expected_version,
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
