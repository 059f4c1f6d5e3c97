//! The closed set of scopes an API key can carry. Each gRPC method needs
//! exactly one (see [`super::policy`]); a scope names what a caller does,
//! not which service it calls, so a service that only checks sessions gets
//! `sessions:check` and nothing else.

use std::fmt;

/// What a caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Directories and their SCIM bearer tokens.
    DirectoriesAdmin,
    /// API keys: create, list, revoke.
    ApiKeysAdmin,
    /// Resolve a SCIM bearer token to its directory: the gateway.
    ScimTokensResolve,
    /// Resolve an API key to its caller: every service, for its callers.
    ApiKeysAuthenticate,
    UsersRead,
    UsersWrite,
    GroupsRead,
    GroupsWrite,
    /// CheckSession and CheckToken.
    SessionsCheck,
    /// Create and revoke sessions.
    SessionsWrite,
    /// List a user's sessions (as handles, never as session ids).
    SessionsRead,
    /// Follow WatchRevocations.
    RevocationsWatch,
    /// Operational state, e.g. the session revocation backlog.
    MonitoringRead,
    /// Roles, role and attribute mappings, effective roles and profiles
    /// (a profile holds mapped user attributes).
    RolesRead,
    RolesWrite,
    /// ListEvents and WatchEvents: a directory's change stream.
    EventsRead,
    /// Drain a service's outbox of events: events-service.
    EventsDrain,
    WebhooksAdmin,
}

impl Scope {
    /// Every scope, in the order the README lists them.
    pub const ALL: [Scope; 18] = [
        Scope::DirectoriesAdmin,
        Scope::ApiKeysAdmin,
        Scope::ScimTokensResolve,
        Scope::ApiKeysAuthenticate,
        Scope::UsersRead,
        Scope::UsersWrite,
        Scope::GroupsRead,
        Scope::GroupsWrite,
        Scope::SessionsCheck,
        Scope::SessionsWrite,
        Scope::SessionsRead,
        Scope::RevocationsWatch,
        Scope::MonitoringRead,
        Scope::RolesRead,
        Scope::RolesWrite,
        Scope::EventsRead,
        Scope::EventsDrain,
        Scope::WebhooksAdmin,
    ];

    /// The scope's name, as keys carry it.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::DirectoriesAdmin => "directories:admin",
            Scope::ApiKeysAdmin => "apikeys:admin",
            Scope::ScimTokensResolve => "scim-tokens:resolve",
            Scope::ApiKeysAuthenticate => "apikeys:authenticate",
            Scope::UsersRead => "users:read",
            Scope::UsersWrite => "users:write",
            Scope::GroupsRead => "groups:read",
            Scope::GroupsWrite => "groups:write",
            Scope::SessionsCheck => "sessions:check",
            Scope::SessionsWrite => "sessions:write",
            Scope::SessionsRead => "sessions:read",
            Scope::RevocationsWatch => "revocations:watch",
            Scope::MonitoringRead => "monitoring:read",
            Scope::RolesRead => "roles:read",
            Scope::RolesWrite => "roles:write",
            Scope::EventsRead => "events:read",
            Scope::EventsDrain => "events:drain",
            Scope::WebhooksAdmin => "webhooks:admin",
        }
    }

    /// The scope named `name`, if there is one.
    pub fn parse(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|scope| scope.as_str() == name)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scope_parses_back_from_its_name() {
        for scope in Scope::ALL {
            assert_eq!(Scope::parse(scope.as_str()), Some(scope));
        }
        assert_eq!(Scope::parse("users:delete"), None);
    }
}
