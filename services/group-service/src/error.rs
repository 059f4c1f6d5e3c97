//! group-service's error type and its one mapping to gRPC statuses.

use scim::ScimError;
use tonic::Status;

/// Why a group operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller's mistake, answered with its SCIM error type.
    #[error(transparent)]
    Scim(#[from] ScimError),
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
    /// user-service could not say which members are users: the request is
    /// refused whole, as UNAVAILABLE, so the caller retries it.
    #[error("user-service: {0}")]
    UserService(Status),
}

impl From<Error> for Status {
    fn from(err: Error) -> Status {
        match &err {
            Error::Scim(scim) => idmesh_api::status::from_scim(scim),
            Error::UserService(status) => {
                tracing::warn!(code = ?status.code(), message = status.message(), "user-service did not answer a member lookup");
                Status::unavailable("user-service is unavailable; retry later")
            }
            Error::Database(db) if idmesh_store::is_transient(db) => {
                idmesh_api::status::unavailable("group-service", &err)
            }
            Error::Database(_) => idmesh_api::status::internal("group-service", &err),
        }
    }
}
