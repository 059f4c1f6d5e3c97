//! Why a check could not be answered.

use tonic::{Code, Status};

/// Why a check could not be answered. Every error fails closed: the
/// session or token must not be accepted.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// session-service could not be reached, did not answer within the
    /// request timeout, or could not reach its store.
    #[error("session-service is unavailable: {}", .0.message())]
    Unavailable(Status),
    /// session-service refused the request as given (e.g. an empty session
    /// id: INVALID_ARGUMENT, with the SCIM error type in its ErrorInfo).
    #[error("session-service refused the request: {}", .0.message())]
    Rejected(Status),
    /// session-service answered something this client does not understand.
    #[error("unexpected answer from session-service: {0}")]
    Protocol(String),
    /// The address given to [`SessionClient::connect`](crate::SessionClient::connect)
    /// is not a URI.
    #[error("invalid session-service address {addr:?}: {source}")]
    Address {
        /// The address as given.
        addr: String,
        /// What is wrong with it.
        source: tonic::transport::Error,
    },
}

impl Error {
    /// The error for a failed call: the caller's mistakes are
    /// [`Error::Rejected`], the rest is [`Error::Unavailable`].
    pub(crate) fn from_status(status: Status) -> Error {
        match status.code() {
            Code::InvalidArgument | Code::NotFound | Code::FailedPrecondition | Code::OutOfRange => {
                Error::Rejected(status)
            }
            _ => Error::Unavailable(status),
        }
    }
}
