//! role-mapping-service's error type and its one mapping to gRPC statuses.

use scim::ScimError;
use tonic::{Code, Status};

/// The `ErrorInfo` reason of deleting a role that a mapping uses.
pub const ROLE_IN_USE: &str = "roleInUse";

/// Why a role-mapping operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller's mistake, answered with its SCIM error type.
    #[error(transparent)]
    Scim(#[from] ScimError),
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
    /// A role that mappings use cannot be deleted; names the directories.
    #[error("role {role:?} is used by the role mappings of directories {directories:?}")]
    RoleInUse { role: String, directories: Vec<String> },
    /// A service this one calls answered with an error.
    #[error("{service}: {status}")]
    Peer { service: &'static str, status: Status },
    /// A concurrent read panicked or was cancelled.
    #[error("a concurrent read failed: {0}")]
    Task(String),
    /// Work given up after this long: a peer or the database did not
    /// answer in time.
    #[error("gave up after {0:?}: a peer or the database did not answer")]
    Overran(std::time::Duration),
}

impl Error {
    pub fn users(status: Status) -> Error {
        Error::Peer {
            service: "user-service",
            status,
        }
    }

    pub fn groups(status: Status) -> Error {
        Error::Peer {
            service: "group-service",
            status,
        }
    }

    pub fn events(status: Status) -> Error {
        Error::Peer {
            service: "events-service",
            status,
        }
    }

    pub fn sessions(status: Status) -> Error {
        Error::Peer {
            service: "session-service",
            status,
        }
    }
}

impl From<Error> for Status {
    fn from(err: Error) -> Status {
        match &err {
            Error::Scim(scim) => idmesh_api::status::from_scim(scim),
            Error::RoleInUse { .. } => {
                idmesh_api::status::with_reason(Code::FailedPrecondition, Some(ROLE_IN_USE), err.to_string())
            }
            // What the caller named does not exist, or was malformed (a page
            // token): the peer's answer is the caller's.
            Error::Peer { status, .. } if matches!(status.code(), Code::NotFound | Code::InvalidArgument) => {
                status.clone()
            }
            Error::Peer { service, status } => {
                tracing::warn!(service, code = ?status.code(), message = status.message(), "a peer did not answer");
                Status::unavailable(format!("{service} is unavailable; retry later"))
            }
            Error::Overran(_) => Status::deadline_exceeded(err.to_string()),
            Error::Database(_) | Error::Task(_) => idmesh_api::status::internal("role-mapping-service", &err),
        }
    }
}
