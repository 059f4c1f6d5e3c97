//! Users, stored by user-service. A user's readOnly `groups` comes from
//! group-service whenever a response carries it, in one call per page (see
//! [`crate::members::groups_of_users`]).

use idmesh_api::list::ListRequest;
use idmesh_api::resource::Resource;
use idmesh_proto::v1 as proto;
use scim::attributes::Projection;
use scim::schema::{ResourceSchema, USER_RESOURCE};
use serde_json::Value;

use crate::AppState;
use crate::error::ApiError;
use crate::members::groups_of_users;
use crate::resources::{Listed, ResourceType};

/// `/Users`.
#[derive(Debug)]
pub struct Users;

impl ResourceType for Users {
    const SCHEMA: &'static ResourceSchema = &USER_RESOURCE;
    const CREATED_WITH_RELATIONS: bool = false;

    async fn create(state: &AppState, directory_id: String, resource_json: String) -> Result<Resource, ApiError> {
        let request = proto::CreateUserRequest {
            directory_id,
            resource_json,
        };
        Ok(state
            .users
            .clone()
            .create_user(request)
            .await?
            .into_inner()
            .try_into()?)
    }

    async fn get(state: &AppState, directory_id: String, id: String) -> Result<Resource, ApiError> {
        let request = proto::GetUserRequest { directory_id, id };
        Ok(state.users.clone().get_user(request).await?.into_inner().try_into()?)
    }

    async fn list(state: &AppState, directory_id: String, request: ListRequest) -> Result<Listed, ApiError> {
        let request = proto::ListUsersRequest {
            directory_id,
            filter: request.filter,
            page: Some(request.page),
            sort: request.sort,
        };
        let response = state.users.clone().list_users(request).await?.into_inner();
        let users = response
            .users
            .into_iter()
            .map(Resource::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Listed::new(
            users,
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
        let request = proto::ReplaceUserRequest {
            directory_id,
            id,
            resource_json,
            expected_version,
        };
        Ok(state
            .users
            .clone()
            .replace_user(request)
            .await?
            .into_inner()
            .try_into()?)
    }

    async fn patch(
        state: &AppState,
        directory_id: String,
        id: String,
        operations: Vec<proto::PatchOperation>,
        expected_version: Option<i64>,
    ) -> Result<Resource, ApiError> {
        let request = proto::PatchUserRequest {
            directory_id,
            id,
            operations,
            expected_version,
        };
        Ok(state.users.clone().patch_user(request).await?.into_inner().try_into()?)
    }

    async fn delete(
        state: &AppState,
        directory_id: String,
        id: String,
        expected_version: Option<i64>,
    ) -> Result<(), ApiError> {
        let request = proto::DeleteUserRequest {
            directory_id,
            id,
            expected_version,
        };
        state.users.clone().delete_user(request).await?;
        Ok(())
    }

    /// Adds each user's `groups`, left out when it has none.
    async fn complete(
        state: &AppState,
        directory_url: &str,
        page: &mut [Resource],
        projection: &Projection,
    ) -> Result<(), ApiError> {
        let Some(directory_id) = page.first().map(|user| user.directory_id.clone()) else {
            return Ok(());
        };
        if !projection.includes(&USER_RESOURCE, "groups") {
            return Ok(());
        }
        let ids: Vec<&str> = page.iter().map(|user| user.id.as_str()).collect();
        let mut groups = groups_of_users(&state.groups, &directory_id, directory_url, &ids).await?;
        for user in page {
            if let Some(groups) = groups.remove(&user.id) {
                user.document.insert("groups".to_owned(), Value::Array(groups));
            }
        }
        Ok(())
    }
}
