//! The policy table: for every gRPC method of every idmesh service, the
//! scope a caller needs and how the call is limited to directories. The
//! layer in [`super::layer`] refuses a method that is not in the table, and
//! a test below fails when the table and the proto files disagree, so a new
//! RPC cannot be served without a policy.

use super::scope::Scope;

/// How a call of a directory-limited key is confined to its directories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectoryRule {
    /// The request names one directory (`directory_id`); the handler checks
    /// it with [`super::authorize`] before touching anything.
    One,
    /// The request names a resource by a secret or an id (a session, a
    /// webhook); the handler checks the directory of what it found with
    /// [`super::Principal::require_directory`].
    OfResource,
    /// The answer is filtered to the caller's directories.
    Filtered,
    /// Not about one directory: only keys not limited to directories.
    Global,
}

impl DirectoryRule {
    /// How the README's table names the rule.
    pub fn describe(self) -> &'static str {
        match self {
            DirectoryRule::One => "one directory",
            DirectoryRule::OfResource => "the resource's directory",
            DirectoryRule::Filtered => "filtered",
            DirectoryRule::Global => "global",
        }
    }
}

/// What calling one method takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// The gRPC path, `/idmesh.v1.UserService/GetUser`.
    pub method: &'static str,
    pub scope: Scope,
    pub directories: DirectoryRule,
}

const fn rule(method: &'static str, scope: Scope, directories: DirectoryRule) -> Policy {
    Policy {
        method,
        scope,
        directories,
    }
}

use DirectoryRule::{Filtered, Global, OfResource, One};
use Scope::*;

/// Every method of every service, grouped by service.
pub const POLICIES: &[Policy] = &[
    rule("/idmesh.v1.DirectoryService/CreateDirectory", DirectoriesAdmin, Global),
    rule("/idmesh.v1.DirectoryService/GetDirectory", DirectoriesAdmin, One),
    rule(
        "/idmesh.v1.DirectoryService/ListDirectories",
        DirectoriesAdmin,
        Filtered,
    ),
    rule("/idmesh.v1.DirectoryService/IssueToken", DirectoriesAdmin, One),
    rule("/idmesh.v1.DirectoryService/RevokeToken", DirectoriesAdmin, One),
    rule("/idmesh.v1.DirectoryService/ListTokens", DirectoriesAdmin, One),
    rule("/idmesh.v1.DirectoryService/ResolveToken", ScimTokensResolve, Global),
    rule("/idmesh.v1.DirectoryService/SetRateLimit", DirectoriesAdmin, One),
    rule("/idmesh.v1.ApiKeyService/CreateApiKey", ApiKeysAdmin, Global),
    rule("/idmesh.v1.ApiKeyService/ListApiKeys", ApiKeysAdmin, Global),
    rule("/idmesh.v1.ApiKeyService/RevokeApiKey", ApiKeysAdmin, Global),
    rule(
        "/idmesh.v1.ApiKeyService/AuthenticateApiKey",
        ApiKeysAuthenticate,
        Global,
    ),
    rule("/idmesh.v1.UserService/CreateUser", UsersWrite, One),
    rule("/idmesh.v1.UserService/GetUser", UsersRead, One),
    rule("/idmesh.v1.UserService/ReplaceUser", UsersWrite, One),
    rule("/idmesh.v1.UserService/PatchUser", UsersWrite, One),
    rule("/idmesh.v1.UserService/DeleteUser", UsersWrite, One),
    rule("/idmesh.v1.UserService/ListUsers", UsersRead, One),
    rule("/idmesh.v1.UserService/LookupUsers", UsersRead, One),
    rule("/idmesh.v1.UserService/GetRevocationBacklog", MonitoringRead, Global),
    rule("/idmesh.v1.GroupService/CreateGroup", GroupsWrite, One),
    rule("/idmesh.v1.GroupService/GetGroup", GroupsRead, One),
    rule("/idmesh.v1.GroupService/ListGroups", GroupsRead, One),
    rule("/idmesh.v1.GroupService/UpdateGroup", GroupsWrite, One),
    rule("/idmesh.v1.GroupService/PatchGroup", GroupsWrite, One),
    rule("/idmesh.v1.GroupService/PatchMembers", GroupsWrite, One),
    rule("/idmesh.v1.GroupService/ReplaceMembers", GroupsWrite, One),
    rule("/idmesh.v1.GroupService/ListMembers", GroupsRead, One),
    rule("/idmesh.v1.GroupService/ListGroupsOfMember", GroupsRead, One),
    rule("/idmesh.v1.GroupService/DeleteGroup", GroupsWrite, One),
    rule("/idmesh.v1.GroupService/RemoveMemberEverywhere", GroupsWrite, One),
    rule("/idmesh.v1.SessionService/CreateSession", SessionsWrite, One),
    rule("/idmesh.v1.SessionService/CheckSession", SessionsCheck, OfResource),
    rule("/idmesh.v1.SessionService/CheckToken", SessionsCheck, One),
    rule("/idmesh.v1.SessionService/RevokeSession", SessionsWrite, OfResource),
    rule("/idmesh.v1.SessionService/RevokeSessionByHandle", SessionsWrite, One),
    rule("/idmesh.v1.SessionService/RevokeUserSessions", SessionsWrite, One),
    rule("/idmesh.v1.SessionService/ListUserSessions", SessionsRead, One),
    rule("/idmesh.v1.SessionService/WatchRevocations", RevocationsWatch, Filtered),
    rule("/idmesh.v1.RoleMappingService/CreateRole", RolesWrite, Global),
    rule("/idmesh.v1.RoleMappingService/ListRoles", RolesRead, Global),
    rule("/idmesh.v1.RoleMappingService/DeleteRole", RolesWrite, Global),
    rule("/idmesh.v1.RoleMappingService/SetRoleMapping", RolesWrite, One),
    rule("/idmesh.v1.RoleMappingService/GetRoleMapping", RolesRead, One),
    rule("/idmesh.v1.RoleMappingService/PreviewMappings", RolesRead, One),
    rule("/idmesh.v1.RoleMappingService/SetAttributeMapping", RolesWrite, One),
    rule("/idmesh.v1.RoleMappingService/GetAttributeMapping", RolesRead, One),
    rule("/idmesh.v1.RoleMappingService/GetEffectiveRoles", RolesRead, One),
    rule("/idmesh.v1.RoleMappingService/ListRoleHolders", RolesRead, One),
    rule("/idmesh.v1.RoleMappingService/GetProfile", RolesRead, One),
    rule("/idmesh.v1.EventService/ListEvents", EventsRead, One),
    rule("/idmesh.v1.EventService/WatchEvents", EventsRead, One),
    rule("/idmesh.v1.WebhookService/CreateWebhook", WebhooksAdmin, One),
    rule("/idmesh.v1.WebhookService/ListWebhooks", WebhooksAdmin, Filtered),
    rule("/idmesh.v1.WebhookService/DeleteWebhook", WebhooksAdmin, OfResource),
    rule(
        "/idmesh.v1.WebhookService/RotateWebhookSecret",
        WebhooksAdmin,
        OfResource,
    ),
    rule("/idmesh.v1.WebhookService/ReplayWebhook", WebhooksAdmin, OfResource),
    rule(
        "/idmesh.v1.WebhookService/ListDeliveryAttempts",
        WebhooksAdmin,
        OfResource,
    ),
    rule("/idmesh.v1.OutboxService/PullOutbox", EventsDrain, Global),
    rule("/idmesh.v1.OutboxService/AckOutbox", EventsDrain, Global),
];

/// The policy of the method at `path`, if it has one.
pub fn policy(path: &str) -> Option<&'static Policy> {
    POLICIES.iter().find(|policy| policy.method == path)
}

/// Whether `path` is served without a key: health, so probes need no
/// secret, and reflection, which only describes the public contracts.
pub fn is_open(path: &str) -> bool {
    path.starts_with("/grpc.health.v1.") || path.starts_with("/grpc.reflection.")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use prost::Message;

    use super::*;

    /// Every method of every service in idmesh's descriptor set.
    fn declared_methods() -> BTreeSet<String> {
        let set = prost_types::FileDescriptorSet::decode(idmesh_proto::FILE_DESCRIPTOR_SET)
            .expect("the descriptor set decodes");
        let mut methods = BTreeSet::new();
        for file in &set.file {
            for service in &file.service {
                for method in &service.method {
                    methods.insert(format!("/{}.{}/{}", file.package(), service.name(), method.name()));
                }
            }
        }
        methods
    }

    #[test]
    fn every_method_of_every_service_has_exactly_one_policy() {
        let declared = declared_methods();
        let with_policy: BTreeSet<String> = POLICIES.iter().map(|p| p.method.to_owned()).collect();
        assert_eq!(with_policy.len(), POLICIES.len(), "a method is in the table twice");
        let missing: Vec<_> = declared.difference(&with_policy).collect();
        assert!(missing.is_empty(), "methods without a policy: {missing:?}");
        let stale: Vec<_> = with_policy.difference(&declared).collect();
        assert!(stale.is_empty(), "policies for methods that do not exist: {stale:?}");
    }

    #[test]
    fn health_and_reflection_are_open_and_nothing_else_is() {
        assert!(is_open("/grpc.health.v1.Health/Check"));
        assert!(is_open(
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
        ));
        assert!(declared_methods().iter().all(|method| !is_open(method)));
    }
}
