//! Which directory each request of a [`DirectoryRule::One`] method names.
//! A handler confirms it with [`super::authorize`]; the end-to-end test of
//! directory-limited keys calls every such method with another directory.
//!
//! [`DirectoryRule::One`]: super::DirectoryRule::One

use idmesh_proto::v1 as pb;

/// A request that names the one directory it reads or changes.
pub trait DirectoryScoped {
    fn directory_id(&self) -> &str;
}

macro_rules! directory_scoped {
    ($field:ident: $($request:ty),+ $(,)?) => {
        $(impl DirectoryScoped for $request {
            fn directory_id(&self) -> &str {
                &self.$field
            }
        })+
    };
}

directory_scoped!(id: pb::GetDirectoryRequest);
directory_scoped!(
    directory_id: pb::IssueTokenRequest,
    pb::SetRateLimitRequest,
    pb::RevokeTokenRequest,
    pb::ListTokensRequest,
    pb::CreateUserRequest,
    pb::GetUserRequest,
    pb::ReplaceUserRequest,
    pb::PatchUserRequest,
    pb::DeleteUserRequest,
    pb::ListUsersRequest,
    pb::LookupUsersRequest,
    pb::CreateGroupRequest,
    pb::GetGroupRequest,
    pb::ListGroupsRequest,
    pb::UpdateGroupRequest,
    pb::PatchGroupRequest,
    pb::PatchMembersRequest,
    pb::ReplaceMembersRequest,
    pb::ListMembersRequest,
    pb::ListGroupsOfMemberRequest,
    pb::DeleteGroupRequest,
    pb::RemoveMemberEverywhereRequest,
    pb::CreateSessionRequest,
    pb::CheckTokenRequest,
    pb::RevokeSessionByHandleRequest,
    pb::RevokeUserSessionsRequest,
    pb::ListUserSessionsRequest,
    pb::SetRoleMappingRequest,
    pb::GetRoleMappingRequest,
    pb::PreviewMappingsRequest,
    pb::SetAttributeMappingRequest,
    pb::GetAttributeMappingRequest,
    pb::GetEffectiveRolesRequest,
    pb::ListRoleHoldersRequest,
    pb::GetProfileRequest,
    pb::CreateWebhookRequest,
    pb::ListEventsRequest,
    pb::WatchEventsRequest,
);
