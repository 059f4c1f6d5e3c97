//! user-service's error type and its one mapping to gRPC statuses.

use scim::ScimError;
use tonic::Status;

/// Why a user operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller's mistake, answered with its SCIM error type.
    #[error(transparent)]
    Scim(#[from] ScimError),
    #[error("database: {0}")]
    Database(#[from] sea_orm::DbErr),
    #[error("password hashing: {0}")]
    Password(String),
}

impl From<Error> for Status {
    fn from(err: Error) -> Status {
        match &err {
            Error::Scim(scim) => idmesh_api::status::from_scim(scim),
            Error::Database(_) | Error::Password(_) => idmesh_api::status::internal("user-service", &err),
        }
    }
}
