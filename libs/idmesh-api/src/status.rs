//! The one mapping between SCIM errors and gRPC statuses.
//!
//! Services answer with a gRPC code plus a `google.rpc.ErrorInfo` whose
//! reason is the SCIM error type ("uniqueness", "invalidFilter", ...), so a
//! gRPC caller can act on it and the gateway can rebuild the exact SCIM error.

use std::collections::HashMap;

use scim::{ScimError, ScimType};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The `ErrorInfo.domain` of idmesh errors.
pub const ERROR_DOMAIN: &str = "idmesh.dev";

/// The gRPC status for a SCIM error.
pub fn from_scim(err: &ScimError) -> Status {
    let code = match err.status {
        400 => Code::InvalidArgument,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::NotFound,
        409 => Code::AlreadyExists,
        412 => Code::FailedPrecondition,
        429 => Code::ResourceExhausted,
        503 => Code::Unavailable,
        _ => Code::Internal,
    };
    match err.scim_type {
        Some(scim_type) => Status::with_error_details(
            code,
            err.detail.clone(),
            ErrorDetails::with_error_info(scim_type.as_str(), ERROR_DOMAIN, HashMap::new()),
        ),
        None => Status::new(code, err.detail.clone()),
    }
}

/// The SCIM error for a gRPC status, as the gateway answers it over HTTP.
///
/// Internal errors stay opaque: their detail was logged where they happened.
pub fn to_scim(status: &Status) -> ScimError {
    let http_status = match status.code() {
        Code::InvalidArgument | Code::OutOfRange => 400,
        Code::Unauthenticated => 401,
        Code::PermissionDenied => 403,
        Code::NotFound => 404,
        Code::AlreadyExists => 409,
        Code::FailedPrecondition | Code::Aborted => 412,
        Code::ResourceExhausted => 429,
        Code::Unavailable | Code::DeadlineExceeded => 503,
        _ => return ScimError::internal(),
    };
    let scim_type = status
        .get_error_details()
        .error_info()
        .filter(|info| info.domain == ERROR_DOMAIN)
        .and_then(|info| ScimType::parse(&info.reason));
    let detail = match http_status {
        503 => "a backing service is unavailable; retry later".to_owned(),
        _ => status.message().to_owned(),
    };
    ScimError::new(http_status, scim_type, detail)
}

/// An opaque INTERNAL status; the real cause is logged here, with context,
/// and never sent to the caller.
pub fn internal(context: &str, err: &dyn std::error::Error) -> Status {
    tracing::error!(error = %err, "{context}");
    Status::internal("internal error")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scim_type_survives_the_trip_through_grpc() {
        let err = ScimError::invalid_filter("unexpected end of filter at 12");
        let status = from_scim(&err);
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(to_scim(&status), err);
    }

    #[test]
    fn uniqueness_is_already_exists_and_409() {
        let status = from_scim(&ScimError::uniqueness("userName taken"));
        assert_eq!(status.code(), Code::AlreadyExists);
        let back = to_scim(&status);
        assert_eq!((back.status, back.scim_type), (409, Some(ScimType::Uniqueness)));
    }

    #[test]
    fn internal_details_never_reach_the_client() {
        let back = to_scim(&Status::internal("connection to 10.0.0.3 refused"));
        assert_eq!(back, ScimError::internal());
    }

    #[test]
    fn unavailable_becomes_503() {
        let back = to_scim(&Status::unavailable("tcp connect error"));
        assert_eq!(back.status, 503);
        assert!(!back.detail.contains("tcp"));
    }
}
