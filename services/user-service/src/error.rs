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
    /// Every core stayed busy with other requests' CPU-heavy work.
    #[error(transparent)]
    Busy(#[from] idmesh_runtime::cpu::CpuError),
}

impl From<Error> for Status {
    fn from(err: Error) -> Status {
        match &err {
            Error::Scim(scim) => idmesh_api::status::from_scim(scim),
            Error::Database(db) if idmesh_store::is_transient(db) => {
                idmesh_api::status::unavailable("user-service", &err)
            }
            Error::Busy(idmesh_runtime::cpu::CpuError::Busy) => idmesh_api::status::unavailable("user-service", &err),
            Error::Database(_) | Error::Password(_) | Error::Busy(_) => {
                idmesh_api::status::internal("user-service", &err)
            }
        }
    }
}
