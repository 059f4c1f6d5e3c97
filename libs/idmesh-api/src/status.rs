//! The one status table: how an error travels from a service (a SCIM
//! error, or a plain gRPC status) over gRPC (a code plus a
//! `google.rpc.ErrorInfo`) to the gateway and out as HTTP.
//!
//! Services answer with a gRPC code and an `ErrorInfo` (domain
//! [`ERROR_DOMAIN`]) whose reason is the SCIM error type ("uniqueness",
//! "invalidFilter", ...), so a gRPC caller can act on it and the gateway can
//! rebuild the exact SCIM error. [`TABLE`] is read in both directions; the
//! few codes that only ever arrive (from tonic itself, or a peer) are mapped
//! in [`to_scim`] next to it.

use std::collections::HashMap;

use scim::{ScimError, ScimType};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The `ErrorInfo.domain` of idmesh errors.
pub const ERROR_DOMAIN: &str = "idmesh.dev";

/// HTTP status ↔ gRPC code, for every error the services answer with.
pub const TABLE: &[(u16, Code)] = &[
    (400, Code::InvalidArgument),
    (401, Code::Unauthenticated),
    (403, Code::PermissionDenied),
    (404, Code::NotFound),
    (409, Code::AlreadyExists),
    (412, Code::FailedPrecondition),
    (429, Code::ResourceExhausted),
    (503, Code::Unavailable),
];

/// The gRPC code an HTTP status travels as; anything not in [`TABLE`] is
/// INTERNAL.
fn code_for(http_status: u16) -> Code {
    TABLE
        .iter()
        .find(|(http, _)| *http == http_status)
        .map_or(Code::Internal, |(_, code)| *code)
}

/// The HTTP status a gRPC code answers as, `None` for INTERNAL and the
/// other codes that mean a failure of ours.
fn http_for(code: Code) -> Option<u16> {
    let arriving_only = match code {
        // A lost compare-and-set race reads like a stale version.
        Code::Aborted => Some(412),
        // The request's time ran out somewhere behind the gateway: tonic
        // answers a call whose `grpc-timeout` expired at the server with
        // CANCELLED, one whose deadline passed at the caller with
        // DEADLINE_EXCEEDED.
        Code::DeadlineExceeded | Code::Cancelled => Some(503),
        // OUT_OF_RANGE is what tonic answers for a message over the size
        // limit (no service of ours sends it to the gateway): our failure,
        // so it stays INTERNAL.
        _ => None,
    };
    arriving_only.or_else(|| TABLE.iter().find(|(_, c)| *c == code).map(|(http, _)| *http))
}

/// A status with `code` and `message`, and an `ErrorInfo` naming `reason`
/// in [`ERROR_DOMAIN`] when there is one.
pub fn with_reason(code: Code, reason: Option<&str>, message: impl Into<String>) -> Status {
    match reason {
        Some(reason) => Status::with_error_details(
            code,
            message,
            ErrorDetails::with_error_info(reason, ERROR_DOMAIN, HashMap::new()),
        ),
        None => Status::new(code, message),
    }
}

/// The gRPC status for a SCIM error.
pub fn from_scim(err: &ScimError) -> Status {
    with_reason(
        code_for(err.status),
        err.scim_type.map(ScimType::as_str),
        err.detail.clone(),
    )
}

/// The `ErrorInfo` reason a status carries in [`ERROR_DOMAIN`].
pub fn reason(status: &Status) -> Option<String> {
    status
        .get_error_details()
        .error_info()
        .filter(|info| info.domain == ERROR_DOMAIN)
        .map(|info| info.reason.clone())
}

/// The SCIM error for a gRPC status, as the gateway answers it over HTTP.
///
/// Internal errors stay opaque: their detail was logged where they happened.
pub fn to_scim(status: &Status) -> ScimError {
    let Some(http_status) = http_for(status.code()) else {
        return ScimError::internal();
    };
    let scim_type = reason(status).and_then(|reason| ScimType::parse(&reason));
    let detail = match http_status {
        503 => "a backing service is unavailable; retry later".to_owned(),
        _ => status.message().to_owned(),
    };
    ScimError::new(http_status, scim_type, detail)
}

/// INVALID_ARGUMENT for a request that is not SCIM (a session, a token),
/// with the reason a SCIM `invalidValue` carries, so callers handle both
/// alike.
pub fn invalid_argument(detail: impl Into<String>) -> Status {
    with_reason(Code::InvalidArgument, Some(ScimType::InvalidValue.as_str()), detail)
}

/// NOT_FOUND for something that is not a SCIM resource.
pub fn not_found(detail: impl Into<String>) -> Status {
    Status::not_found(detail)
}

/// UNAVAILABLE for momentary trouble (a database that does not answer in
/// time, every core busy): the caller should retry later, and the gateway
/// answers 503 with `Retry-After`. The cause is logged here.
pub fn unavailable(context: &str, err: &dyn std::error::Error) -> Status {
    tracing::warn!(error = %err, "{context}: unavailable");
    Status::unavailable(format!("{context} is busy or cannot reach its database; retry later"))
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
    fn every_row_of_the_table_travels_both_ways() {
        for (http, code) in TABLE {
            assert_eq!(code_for(*http), *code);
            assert_eq!(http_for(*code), Some(*http));
        }
    }

    #[test]
    fn scim_type_survives_the_trip_through_grpc() {
        let err = ScimError::invalid_filter("unexpected end of filter at 12");
        let status = from_scim(&err);
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(reason(&status).as_deref(), Some("invalidFilter"));
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
    fn an_error_outside_the_table_is_internal() {
        let status = from_scim(&ScimError::new(418, None, "teapot"));
        assert_eq!(status.code(), Code::Internal);
    }

    #[test]
    fn a_reason_of_another_domain_is_not_a_scim_type() {
        let foreign = Status::with_error_details(
            Code::InvalidArgument,
            "bad",
            ErrorDetails::with_error_info("invalidFilter", "example.com", HashMap::new()),
        );
        assert_eq!(to_scim(&foreign).scim_type, None);
    }

    #[test]
    fn internal_details_never_reach_the_client() {
        let back = to_scim(&Status::internal("connection to 10.0.0.3 refused"));
        assert_eq!(back, ScimError::internal());
        let too_large = Status::out_of_range("Error, decoded message length too large: found 9 bytes");
        assert_eq!(to_scim(&too_large), ScimError::internal());
    }

    #[test]
    fn unavailable_and_deadlines_become_503_without_details() {
        for status in [
            Status::unavailable("tcp connect error"),
            Status::deadline_exceeded("timeout at 10.0.0.3"),
            Status::cancelled("Timeout expired at 10.0.0.3"),
        ] {
            let back = to_scim(&status);
            assert_eq!(back.status, 503);
            assert!(!back.detail.contains("10.0") && !back.detail.contains("tcp"));
        }
    }
}
