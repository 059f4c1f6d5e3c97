//! Groups, stored by group-service, members as rows of their own.
//!
//! Members are read from group-service only when the response carries
//! them (`excludedAttributes=members` never reads one), and every response
//! streams them, a list as well as one group (see [`crate::members`]).
//!
//! PATCH answers 200 with the group, except when the request names neither
//! `attributes` nor `excludedAttributes` and the group has more members
//! than `group_patch_member_limit`: then 204 with the ETag, so that an
//! IdP's membership change never costs serialising a huge group.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use idmesh_api::list::ListRequest;
use idmesh_api::resource::Resource;
use idmesh_proto::v1 as proto;
use scim::attributes::Projection;
use scim::schema::{GROUP_RESOURCE, ResourceSchema};

use crate::AppState;
use crate::error::ApiError;
use crate::members::{MemberPages, PendingMembers, stream_group};
use crate::resources::{Listed, ResourceType, render};
use crate::response::BaseUrl;

/// `/Groups`.
#[derive(Debug)]
pub struct Groups;

impl ResourceType for Groups {
    const SCHEMA: &'static ResourceSchema = &GROUP_RESOURCE;
    const CREATED_WITH_RELATIONS: bool = true;

    async fn create(state: &AppState, directory_id: String, resource_json: String) -> Result<Resource, ApiError> {
        let request = proto::CreateGroupRequest {
            directory_id,
            resource_json,
        };
        Ok(state
            .groups
            .clone()
            .create_group(request)
            .await?
            .into_inner()
            .try_into()?)
    }

    async fn get(state: &AppState, directory_id: String, id: String) -> Result<Resource, ApiError> {
        let request = proto::GetGroupRequest { directory_id, id };
        Ok(state.groups.clone().get_group(request).await?.into_inner().try_into()?)
    }

    async fn list(state: &AppState, directory_id: String, request: ListRequest) -> Result<Listed, ApiError> {
        let request = proto::ListGroupsRequest {
            directory_id,
            filter: request.filter,
            page: Some(request.page),
            sort: request.sort,
        };
        let response = state.groups.clone().list_groups(request).await?.into_inner();
        let groups = response
            .groups
            .into_iter()
            .map(Resource::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Listed::new(
            groups,
            response.total_results,
            response.next_cursor,
            response.previous_cursor,
        ))
    }

    async fn replace(
        state: &AppState,
        directory_id: String,
        id: String,
        resource_json: String,
        expected_version: Option<i64>,
    ) -> Result<Resource, ApiError> {
        let request = proto::UpdateGroupRequest {
            directory_id,
            id,
            resource_json,
            expected_version,
        };
        Ok(state
            .groups
            .clone()
            .update_group(request)
            .await?
            .into_inner()
            .try_into()?)
    }

    /// The operations go to group-service as they are: it applies them to
    /// the document and the member rows in one transaction.
    async fn patch(
        state: &AppState,
        directory_id: String,
        id: String,
        operations: Vec<proto::PatchOperation>,
        expected_version: Option<i64>,
    ) -> Result<Resource, ApiError> {
        let request = proto::PatchGroupRequest {
            directory_id,
            id,
            operations,
            expected_version,
        };
        Ok(state
            .groups
            .clone()
            .patch_group(request)
            .await?
            .into_inner()
            .try_into()?)
    }

    async fn delete(
        state: &AppState,
        directory_id: String,
        id: String,
        expected_version: Option<i64>,
    ) -> Result<(), ApiError> {
        let request = proto::DeleteGroupRequest {
            directory_id,
            id,
            expected_version,
        };
        state.groups.clone().delete_group(request).await?;
        Ok(())
    }

    /// A group's members are written after it, page by page as they are
    /// read ([`crate::members`]), in a list as in a response about one group.
    fn streamed(
        state: &AppState,
        directory_url: &str,
        group: &Resource,
        projection: &Projection,
    ) -> Option<PendingMembers> {
        if group.member_count == 0 || !projection.includes(&GROUP_RESOURCE, "members") {
            return None;
        }
        let pages = MemberPages::new(state.groups.clone(), &group.directory_id, &group.id);
        Some(PendingMembers::new(pages, directory_url.to_owned(), projection.clone()))
    }

    /// Answers with the group, its members streamed when `projection`
    /// returns them and it has any.
    async fn respond(
        state: &AppState,
        base: &BaseUrl,
        group: Resource,
        status: StatusCode,
        projection: Projection,
    ) -> Result<Response, ApiError> {
        let directory_url = base.directory(&group.directory_id);
        let members = Groups::streamed(state, &directory_url, &group, &projection);
        let rendered = render::<Groups>(base, &group, status, &projection);
        match members {
            Some(members) => stream_group(rendered, members).await,
            None => Ok(rendered.into_response()),
        }
    }

    fn too_large_to_return(state: &AppState, group: &Resource) -> bool {
        group.member_count > state.group_patch_member_limit
    }
}
