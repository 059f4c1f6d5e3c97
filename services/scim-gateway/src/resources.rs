//! The one resource pipeline: every SCIM resource endpoint
//! (`/Users`, `/Groups`) is served by the handlers here, with the same
//! preconditions, projection, paging and rendering. What differs between
//! resource types is a [`ResourceType`]: its schema, the gRPC calls that
//! store it, and what its responses carry beside the stored document
//! (users' `groups`, groups' `members`). A new resource type is an
//! implementation of that trait and one line in [`crate::router`].
//!
//! - GET, PUT, PATCH and DELETE of one resource honour `If-Match` and
//!   `If-None-Match` (see [`crate::conditional`]).
//! - Every response carrying resources honours `attributes` and
//!   `excludedAttributes` (see [`crate::projection`]); what a projection
//!   leaves out is not read at all.
//! - Lists filter, sort and page in the owning service.

use std::future::Future;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use idmesh_api::list::ListRequest;
use idmesh_api::resource::Resource;
use idmesh_proto::v1 as proto;
use scim::ScimError;
use scim::attributes::Projection;
use scim::list::ListQuery;
use scim::meta::Meta;
use scim::schema::ResourceSchema;
use serde_json::Value;

use crate::AppState;
use crate::conditional::{Freshness, Preconditions};
use crate::error::ApiError;
use crate::members::{PendingMembers, stream_list};
use crate::projection::AttributeQuery;
use crate::response::{BaseUrl, ScimBody, ScimJson, ScimResource, not_modified, without_body};

/// A SCIM resource type the gateway serves: its schema, and how its owning
/// service stores it.
pub trait ResourceType: Sized + Send + Sync + 'static {
    /// Name, endpoint and attributes.
    const SCHEMA: &'static ResourceSchema;

    /// Whether a resource just created can already have what
    /// [`ResourceType::complete`] adds: a group created with members can,
    /// a user is created in no group.
    const CREATED_WITH_RELATIONS: bool;

    fn create(
        state: &AppState,
        directory_id: String,
        resource_json: String,
    ) -> impl Future<Output = Result<Resource, ApiError>> + Send;

    fn get(
        state: &AppState,
        directory_id: String,
        id: String,
    ) -> impl Future<Output = Result<Resource, ApiError>> + Send;

    /// One page of the resources a list request matches, how many match
    /// in all, and, for a cursor request, the cursors around the page.
    fn list(
        state: &AppState,
        directory_id: String,
        request: ListRequest,
    ) -> impl Future<Output = Result<Listed, ApiError>> + Send;

    /// Replaces every writable attribute (SCIM PUT).
    fn replace(
        state: &AppState,
        directory_id: String,
        id: String,
        resource_json: String,
        expected_version: Option<i64>,
    ) -> impl Future<Output = Result<Resource, ApiError>> + Send;

    fn patch(
        state: &AppState,
        directory_id: String,
        id: String,
        operations: Vec<proto::PatchOperation>,
        expected_version: Option<i64>,
    ) -> impl Future<Output = Result<Resource, ApiError>> + Send;

    fn delete(
        state: &AppState,
        directory_id: String,
        id: String,
        expected_version: Option<i64>,
    ) -> impl Future<Output = Result<(), ApiError>> + Send;

    /// Adds to each document of a page what its type stores outside it,
    /// is small, and `projection` returns (users' `groups`), in as few
    /// calls as the page allows. By default there is nothing to add.
    fn complete(
        _state: &AppState,
        _directory_url: &str,
        _page: &mut [Resource],
        _projection: &Projection,
    ) -> impl Future<Output = Result<(), ApiError>> + Send {
        async { Ok(()) }
    }

    /// What a response writes after `resource` as it reads it, never held
    /// whole: a group's `members`, when `projection` returns them and it
    /// has any. By default nothing.
    fn streamed(
        _state: &AppState,
        _directory_url: &str,
        _resource: &Resource,
        _projection: &Projection,
    ) -> Option<PendingMembers> {
        None
    }

    /// Answers with one resource. By default the resource is completed and
    /// rendered whole; a type whose relations can be large streams them.
    fn respond(
        state: &AppState,
        base: &BaseUrl,
        resource: Resource,
        status: StatusCode,
        projection: Projection,
    ) -> impl Future<Output = Result<Response, ApiError>> + Send {
        async move {
            let mut page = [resource];
            if status != StatusCode::CREATED || Self::CREATED_WITH_RELATIONS {
                Self::complete(state, &base.directory(&page[0].directory_id), &mut page, &projection).await?;
            }
            let [resource] = page;
            Ok(render::<Self>(base, &resource, status, &projection).into_response())
        }
    }

    /// Whether the answer to a PATCH that names neither `attributes` nor
    /// `excludedAttributes` leaves out the body (204 with the ETag), so that
    /// an IdP's small change never costs serialising a huge resource.
    fn too_large_to_return(_state: &AppState, _resource: &Resource) -> bool {
        false
    }
}

/// One page of resources from a List call.
#[derive(Debug)]
pub struct Listed {
    pub resources: Vec<Resource>,
    pub total: u64,
    pub next_cursor: Option<String>,
    pub previous_cursor: Option<String>,
}

impl Listed {
    /// A List response's page; its cursors are empty when there are none.
    pub fn new(resources: Vec<Resource>, total_results: i64, next_cursor: String, previous_cursor: String) -> Listed {
        Listed {
            resources,
            total: u64::try_from(total_results).unwrap_or_default(),
            next_cursor: Some(next_cursor).filter(|cursor| !cursor.is_empty()),
            previous_cursor: Some(previous_cursor).filter(|cursor| !cursor.is_empty()),
        }
    }
}

/// The routes of resource type `R`: its endpoint, `.search` under it, and
/// one resource by id.
pub fn routes<R: ResourceType>() -> Router<AppState> {
    let endpoint = R::SCHEMA.endpoint;
    Router::new()
        .route(endpoint, get(list::<R>).post(create::<R>))
        .route(&format!("{endpoint}/.search"), post(search::<R>))
        .route(
            &format!("{endpoint}/{{id}}"),
            get(read::<R>).put(replace::<R>).patch(patch::<R>).delete(delete::<R>),
        )
}

/// `resource` rendered as SCIM (`id` and `meta` added, located under
/// `base`) and projected.
pub fn render<R: ResourceType>(
    base: &BaseUrl,
    resource: &Resource,
    status: StatusCode,
    projection: &Projection,
) -> ScimResource {
    let location = format!(
        "{}{}/{}",
        base.directory(&resource.directory_id),
        R::SCHEMA.endpoint,
        resource.id
    );
    let mut body = scim::meta::render(
        &resource.document,
        &resource.id,
        &Meta {
            resource_type: R::SCHEMA.name,
            created: resource.meta.created,
            last_modified: resource.meta.last_modified,
            version: resource.meta.version,
            location: location.clone(),
        },
    );
    projection.apply(&mut body, R::SCHEMA);
    ScimResource {
        status,
        body,
        version: resource.meta.version,
        location,
    }
}

/// A request body as the JSON text a service takes: it must be an object.
fn resource_json(body: &Value) -> Result<String, ApiError> {
    match body {
        Value::Object(_) => Ok(body.to_string()),
        _ => Err(ScimError::invalid_syntax("the request body must be a JSON object").into()),
    }
}

/// The `expected_version` a write to resource `id` sends under
/// `preconditions`; the resource's current version is read only for the
/// preconditions that cannot be left to the write's own check.
async fn expected_version<R: ResourceType>(
    state: &AppState,
    directory_id: &str,
    id: &str,
    preconditions: &Preconditions,
) -> Result<Option<i64>, ApiError> {
    let current = async {
        let resource = R::get(state, directory_id.to_owned(), id.to_owned()).await?;
        Ok(resource.meta.version)
    };
    preconditions.expected_version(current).await
}

async fn create<R: ResourceType>(
    State(state): State<AppState>,
    Path(directory_id): Path<String>,
    base: BaseUrl,
    returning: AttributeQuery,
    ScimJson(body): ScimJson,
) -> Result<Response, ApiError> {
    let projection = returning.projection(R::SCHEMA)?;
    let resource = create_resource::<R>(&state, directory_id, &body).await?;
    R::respond(&state, &base, resource, StatusCode::CREATED, projection).await
}

/// Creates a resource of type `R` from a request body (POST, and POST in
/// a bulk request).
pub async fn create_resource<R: ResourceType>(
    state: &AppState,
    directory_id: String,
    body: &Value,
) -> Result<Resource, ApiError> {
    R::create(state, directory_id, resource_json(body)?).await
}

/// Replaces resource `id` of type `R` with a request body under
/// `preconditions` (PUT, and PUT in a bulk request).
pub async fn replace_resource<R: ResourceType>(
    state: &AppState,
    directory_id: String,
    id: String,
    body: &Value,
    preconditions: &Preconditions,
) -> Result<Resource, ApiError> {
    let resource_json = resource_json(body)?;
    let expected_version = expected_version::<R>(state, &directory_id, &id, preconditions).await?;
    R::replace(state, directory_id, id, resource_json, expected_version).await
}

/// Applies a PatchOp body to resource `id` of type `R` under
/// `preconditions` (PATCH, and PATCH in a bulk request): the operations
/// are parsed here and applied by the owning service in one transaction,
/// all of them or none.
pub async fn patch_resource<R: ResourceType>(
    state: &AppState,
    directory_id: String,
    id: String,
    body: &Value,
    preconditions: &Preconditions,
) -> Result<Resource, ApiError> {
    let operations = scim::patch::parse_request(body)?;
    // Refused here, before the PATCH crosses a hop: the services check the
    // same for their gRPC callers.
    state.limits.check_patch(&operations)?;
    let operations = idmesh_api::patch::to_proto(&operations);
    let expected_version = expected_version::<R>(state, &directory_id, &id, preconditions).await?;
    R::patch(state, directory_id, id, operations, expected_version).await
}

/// Deletes resource `id` of type `R` under `preconditions` (DELETE, and
/// DELETE in a bulk request).
pub async fn delete_resource<R: ResourceType>(
    state: &AppState,
    directory_id: String,
    id: String,
    preconditions: &Preconditions,
) -> Result<(), ApiError> {
    let expected_version = expected_version::<R>(state, &directory_id, &id, preconditions).await?;
    R::delete(state, directory_id, id, expected_version).await
}

/// GET one resource; `If-None-Match` naming its version is 304 (and reads
/// nothing beside the resource), `If-Match` naming another is 412.
async fn read<R: ResourceType>(
    State(state): State<AppState>,
    Path((directory_id, id)): Path<(String, String)>,
    base: BaseUrl,
    returning: AttributeQuery,
    preconditions: Preconditions,
) -> Result<Response, ApiError> {
    let projection = returning.projection(R::SCHEMA)?;
    let resource = R::get(&state, directory_id, id).await?;
    match preconditions.check_read(resource.meta.version)? {
        Freshness::Modified => R::respond(&state, &base, resource, StatusCode::OK, projection).await,
        Freshness::NotModified => Ok(not_modified(resource.meta.version)),
    }
}

async fn list<R: ResourceType>(
    State(state): State<AppState>,
    Path(directory_id): Path<String>,
    Query(params): Query<Vec<(String, String)>>,
    base: BaseUrl,
) -> Result<Response, ApiError> {
    let query = ListQuery::from_pairs(params.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let page = page_of::<R>(&state, &directory_id, &query, query.start_index, query.count, &base).await?;
    Ok(page.into_response(&query, query.start_index))
}

/// `POST {endpoint}/.search`: the query in a SearchRequest body (RFC 7644
/// §3.4.3), answered like a GET list.
async fn search<R: ResourceType>(
    State(state): State<AppState>,
    Path(directory_id): Path<String>,
    base: BaseUrl,
    ScimJson(body): ScimJson,
) -> Result<Response, ApiError> {
    let query = ListQuery::from_search_request(&body)?;
    let page = page_of::<R>(&state, &directory_id, &query, query.start_index, query.count, &base).await?;
    Ok(page.into_response(&query, query.start_index))
}

/// One page of resources rendered for a list response, how many match,
/// and the cursors around it when the query pages by cursor.
#[derive(Debug, Default)]
pub struct Page {
    pub resources: Vec<Value>,
    /// What each resource's response writes after it, by position in
    /// `resources` ([`ResourceType::streamed`]).
    pub streamed: Vec<Option<PendingMembers>>,
    pub total: u64,
    pub next_cursor: Option<String>,
    pub previous_cursor: Option<String>,
}

impl Page {
    /// Appends `other`'s resources to this page's, adding up the totals.
    pub fn extend(&mut self, other: Page) {
        self.resources.extend(other.resources);
        self.streamed.extend(other.streamed);
        self.total += other.total;
    }

    /// The page as the ListResponse `query` asks for: with its cursors
    /// when it pages by cursor (RFC 9865), else starting at the 1-based
    /// `start_index`. Streamed when a resource has members to write.
    pub fn into_response(self, query: &ListQuery, start_index: u64) -> Response {
        let envelope = match query.cursor {
            Some(_) => {
                scim::list::cursor_list_response(self.resources, self.total, self.next_cursor, self.previous_cursor)
            }
            None => scim::list::list_response(self.resources, self.total, start_index),
        };
        if self.streamed.iter().all(Option::is_none) {
            return ScimBody(envelope).into_response();
        }
        stream_list(envelope, self.streamed)
    }
}

/// The resources of type `R` matching `query`'s filter and sort, `count`
/// of them from the 1-based `start_index` (which the directory-wide search
/// chooses itself), completed and projected as `query` asks.
pub async fn page_of<R: ResourceType>(
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
        R::SCHEMA,
    )?;
    let request = ListRequest::new(query, start_index, count)?;
    let mut listed = R::list(state, directory_id.to_owned(), request).await?;
    let directory_url = base.directory(directory_id);
    R::complete(state, &directory_url, &mut listed.resources, &projection).await?;
    let resources = listed
        .resources
        .iter()
        .map(|resource| render::<R>(base, resource, StatusCode::OK, &projection).body)
        .collect();
    let streamed = listed
        .resources
        .iter()
        .map(|resource| R::streamed(state, &directory_url, resource, &projection))
        .collect();
    Ok(Page {
        resources,
        streamed,
        total: listed.total,
        next_cursor: listed.next_cursor,
        previous_cursor: listed.previous_cursor,
    })
}

async fn replace<R: ResourceType>(
    State(state): State<AppState>,
    Path((directory_id, id)): Path<(String, String)>,
    base: BaseUrl,
    returning: AttributeQuery,
    preconditions: Preconditions,
    ScimJson(body): ScimJson,
) -> Result<Response, ApiError> {
    let projection = returning.projection(R::SCHEMA)?;
    let resource = replace_resource::<R>(&state, directory_id, id, &body, &preconditions).await?;
    R::respond(&state, &base, resource, StatusCode::OK, projection).await
}

/// PATCH; see [`patch_resource`].
async fn patch<R: ResourceType>(
    State(state): State<AppState>,
    Path((directory_id, id)): Path<(String, String)>,
    base: BaseUrl,
    returning: AttributeQuery,
    preconditions: Preconditions,
    ScimJson(body): ScimJson,
) -> Result<Response, ApiError> {
    let projection = returning.projection(R::SCHEMA)?;
    let resource = patch_resource::<R>(&state, directory_id, id, &body, &preconditions).await?;
    if !returning.is_given() && R::too_large_to_return(&state, &resource) {
        return Ok(without_body(StatusCode::NO_CONTENT, resource.meta.version));
    }
    R::respond(&state, &base, resource, StatusCode::OK, projection).await
}

async fn delete<R: ResourceType>(
    State(state): State<AppState>,
    Path((directory_id, id)): Path<(String, String)>,
    preconditions: Preconditions,
) -> Result<StatusCode, ApiError> {
    delete_resource::<R>(&state, directory_id, id, &preconditions).await?;
    Ok(StatusCode::NO_CONTENT)
}
