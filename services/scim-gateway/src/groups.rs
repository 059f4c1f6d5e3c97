//! `/scim/v2/{directory_id}/Groups`: SCIM over HTTP ↔ `GroupService` over
//! gRPC. Like `/Users`: GET, PUT, PATCH and DELETE of one group honour
//! `If-Match` and `If-None-Match` (see [`crate::conditional`]), every
//! response carrying groups honours `attributes` and `excludedAttributes`
//! (see [`crate::projection`]), and lists filter, sort and page in
//! group-service.
//!
//! Members are read from group-service only when the response carries
//! them (`excludedAttributes=members` never reads one), and a response
//! about one group streams them (see [`crate::members`]).
//!
//! PATCH answers 200 with the group, except when the request names neither
//! `attributes` nor `excludedAttributes` and the group has more members
//! than `group_patch_member_limit`: then 204 with the ETag, so that an
//! IdP's membership change never costs serialising a huge group.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use idmesh_proto::v1::{
    CreateGroupRequest, DeleteGroupRequest, GetGroupRequest, Group, ListGroupsRequest, PatchGroupRequest,
    PatchOperation, UpdateGroupRequest,
};
use idmesh_runtime::struct_json;
use scim::ScimError;
use scim::attributes::Projection;
use scim::list::ListQuery;
use scim::schema::GROUP_RESOURCE;
use serde_json::Value;

use crate::AppState;
use crate::conditional::{Freshness, Preconditions};
use crate::error::ApiError;
use crate::listing::{ListSlice, Page};
use crate::members::{MemberPages, stream_group};
use crate::projection::AttributeQuery;
use crate::response::{BaseUrl, ScimBody, ScimJson, ScimResource, not_modified, render_document, without_body};
use crate::users::resource;

/// The group rendered without members, not yet projected.
fn render_group(base: &BaseUrl, group: &Group, status: StatusCode) -> Result<ScimResource, ApiError> {
    let doc = struct_json::from_struct(group.resource.clone().unwrap_or_default());
    render_document(
        base,
        &GROUP_RESOURCE,
        &group.directory_id,
        &group.id,
        &doc,
        group.meta,
        status,
    )
}

/// Answers with one group, its members streamed when `projection` returns
/// them and it has any.
async fn respond(
    state: &AppState,
    base: &BaseUrl,
    group: Group,
    status: StatusCode,
    projection: Projection,
) -> Result<Response, ApiError> {
    let mut rendered = render_group(base, &group, status)?;
    projection.apply(&mut rendered.body, &GROUP_RESOURCE);
    if group.member_count == 0 || !projection.includes(&GROUP_RESOURCE, "members") {
        return Ok(rendered.into_response());
    }
    let pages = MemberPages::new(state.groups.clone(), &group.directory_id, &group.id);
    stream_group(rendered, pages, base.directory(&group.directory_id), projection).await
}

pub async fn create(
    State(state): State<AppState>,
    Path(directory_id): Path<String>,
    base: BaseUrl,
    returning: AttributeQuery,
    ScimJson(body): ScimJson,
) -> Result<Response, ApiError> {
    let projection = returning.projection(&GROUP_RESOURCE)?;
    let request = CreateGroupRequest {
        directory_id,
        resource: Some(resource(body)?),
    };
    let group = state.groups.clone().create_group(request).await?.into_inner();
    respond(&state, &base, group, StatusCode::CREATED, projection).await
}

/// The version a group is at now, for preconditions that cannot be left to
/// the write's own `expected_version` check.
async fn current_version(state: &AppState, directory_id: &str, id: &str) -> Result<i64, ApiError> {
    let request = GetGroupRequest {
        directory_id: directory_id.to_owned(),
        id: id.to_owned(),
    };
    let group = state.groups.clone().get_group(request).await?.into_inner();
    group
        .meta
        .map(|meta| meta.version)
        .ok_or_else(|| ApiError(ScimError::internal()))
}

/// GET one group; `If-None-Match` naming its version is 304 (and reads no
/// member), `If-Match` naming another is 412.
pub async fn get(
    State(state): State<AppState>,
    Path((directory_id, id)): Path<(String, String)>,
    base: BaseUrl,
    returning: AttributeQuery,
    preconditions: Preconditions,
) -> Result<Response, ApiError> {
    let projection = returning.projection(&GROUP_RESOURCE)?;
    let group = state
        .groups
        .clone()
        .get_group(GetGroupRequest { directory_id, id })
        .await?
        .into_inner();
    let version = group.meta.map(|meta| meta.version).unwrap_or_default();
    match preconditions.check_read(version)? {
        Freshness::Modified => respond(&state, &base, group, StatusCode::OK, projection).await,
        Freshness::NotModified => Ok(not_modified(version)),
    }
}

pub async fn list(
    State(state): State<AppState>,
    Path(directory_id): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
    base: BaseUrl,
) -> Result<ScimBody, ApiError> {
    let query = ListQuery::from_pairs(params.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    list_groups(&state, directory_id, query, &base).await
}

/// `POST /Groups/.search`: the query in a SearchRequest body (RFC 7644
/// §3.4.3), answered like a GET list.
pub async fn search(
    State(state): State<AppState>,
    Path(directory_id): Path<String>,
    base: BaseUrl,
    ScimJson(body): ScimJson,
) -> Result<ScimBody, ApiError> {
    let query = ListQuery::from_search_request(&body)?;
    list_groups(&state, directory_id, query, &base).await
}

async fn list_groups(
    state: &AppState,
    directory_id: String,
    query: ListQuery,
    base: &BaseUrl,
) -> Result<ScimBody, ApiError> {
    let page = page_of_groups(state, &directory_id, &query, query.start_index, query.count, base).await?;
    Ok(page.into_body(query.start_index))
}

/// The groups matching `query`'s filter and sort, `count` of them from the
/// 1-based `start_index`, projected as `query` asks. Each group's members
/// are read whole, when returned: a list holds its page in memory.
pub async fn page_of_groups(
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
        &GROUP_RESOURCE,
    )?;
    let slice = ListSlice::new(query, start_index, count)?;
    let request = ListGroupsRequest {
        directory_id: directory_id.to_owned(),
        filter: slice.filter,
        page: Some(slice.page),
        sort: slice.sort,
    };
    let response = state.groups.clone().list_groups(request).await?.into_inner();
    let with_members = projection.includes(&GROUP_RESOURCE, "members");
    let directory_url = base.directory(directory_id);
    let mut resources = Vec::with_capacity(response.groups.len());
    for group in response.groups {
        let mut rendered = render_group(base, &group, StatusCode::OK)?.body;
        if with_members && group.member_count > 0 {
            let members = MemberPages::new(state.groups.clone(), directory_id, &group.id)
                .collect(&directory_url)
                .await?;
            if let Value::Object(doc) = &mut rendered {
                doc.insert("members".to_owned(), Value::Array(members));
            }
        }
        projection.apply(&mut rendered, &GROUP_RESOURCE);
        resources.push(rendered);
    }
    Ok(Page {
        resources,
        total: u64::try_from(response.total_results).unwrap_or_default(),
    })
}

pub async fn replace(
    State(state): State<AppState>,
    Path((directory_id, id)): Path<(String, String)>,
    base: BaseUrl,
    returning: AttributeQuery,
    preconditions: Preconditions,
    ScimJson(body): ScimJson,
) -> Result<Response, ApiError> {
    let projection = returning.projection(&GROUP_RESOURCE)?;
    let resource = resource(body)?;
    let expected_version = preconditions
        .expected_version(current_version(&state, &directory_id, &id))
        .await?;
    let request = UpdateGroupRequest {
        directory_id,
        id,
        resource: Some(resource),
        expected_version,
    };
    let group = state.groups.clone().update_group(request).await?.into_inner();
    respond(&state, &base, group, StatusCode::OK, projection).await
}

/// PATCH a group: the operations go to group-service as they are (it
/// applies them to the document and the member rows in one transaction).
pub async fn patch(
    State(state): State<AppState>,
    Path((directory_id, id)): Path<(String, String)>,
    base: BaseUrl,
    returning: AttributeQuery,
    preconditions: Preconditions,
    ScimJson(body): ScimJson,
) -> Result<Response, ApiError> {
    let projection = returning.projection(&GROUP_RESOURCE)?;
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
    let request = PatchGroupRequest {
        directory_id,
        id,
        operations,
        expected_version,
    };
    let group = state.groups.clone().patch_group(request).await?.into_inner();
    let large = u64::try_from(group.member_count).unwrap_or_default() > state.group_patch_member_limit;
    if large && !returning.is_given() {
        let version = group.meta.map(|meta| meta.version).unwrap_or_default();
        return Ok(without_body(StatusCode::NO_CONTENT, version));
    }
    respond(&state, &base, group, StatusCode::OK, projection).await
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
        .groups
        .clone()
        .delete_group(DeleteGroupRequest {
            directory_id,
            id,
            expected_version,
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
