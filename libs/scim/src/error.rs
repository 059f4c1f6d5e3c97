//! SCIM errors (RFC 7644 §3.12): an HTTP status, an optional `scimType` and
//! a detail meant for the client, rendered as the SCIM error body.

use serde_json::{Map, Value, json};

/// The schema URN of a SCIM error response body.
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// The `scimType` values of RFC 7644 §3.12, which tell a client what kind of
/// 400 (or 409) it got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScimType {
    InvalidFilter,
    TooMany,
    Uniqueness,
    Mutability,
    InvalidSyntax,
    InvalidPath,
    NoTarget,
    InvalidValue,
    InvalidVers,
    Sensitive,
    /// RFC 9865 §4: a `cursor` the server did not hand out.
    InvalidCursor,
}

impl ScimType {
    const ALL: [ScimType; 11] = [
        ScimType::InvalidFilter,
        ScimType::TooMany,
        ScimType::Uniqueness,
        ScimType::Mutability,
        ScimType::InvalidSyntax,
        ScimType::InvalidPath,
        ScimType::NoTarget,
        ScimType::InvalidValue,
        ScimType::InvalidVers,
        ScimType::Sensitive,
        ScimType::InvalidCursor,
    ];

    /// The wire spelling, exactly as RFC 7644 §3.12 (and RFC 9865 §4 for
    /// `invalidCursor`) writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            ScimType::InvalidFilter => "invalidFilter",
            ScimType::TooMany => "tooMany",
            ScimType::Uniqueness => "uniqueness",
            ScimType::Mutability => "mutability",
            ScimType::InvalidSyntax => "invalidSyntax",
            ScimType::InvalidPath => "invalidPath",
            ScimType::NoTarget => "noTarget",
            ScimType::InvalidValue => "invalidValue",
            ScimType::InvalidVers => "invalidVers",
            ScimType::Sensitive => "sensitive",
            ScimType::InvalidCursor => "invalidCursor",
        }
    }

    /// The `scimType` for its wire spelling (ASCII case ignored), `None` for
    /// anything RFC 7644 does not define.
    pub fn parse(s: &str) -> Option<ScimType> {
        Self::ALL.into_iter().find(|t| t.as_str().eq_ignore_ascii_case(s))
    }
}

/// A SCIM error: what the service provider answers when a request fails.
///
/// `detail` is shown to the client, so it says exactly what was wrong with
/// the request and never carries internal state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct ScimError {
    /// The HTTP status code.
    pub status: u16,
    /// The RFC 7644 `scimType`, for the 400 and 409 errors that have one.
    pub scim_type: Option<ScimType>,
    /// A human-readable explanation for the client.
    pub detail: String,
}

impl ScimError {
    /// Any error, spelled out.
    pub fn new(status: u16, scim_type: Option<ScimType>, detail: impl Into<String>) -> Self {
        Self {
            status,
            scim_type,
            detail: detail.into(),
        }
    }

    /// A 400 with the given `scimType`.
    pub fn bad_request(scim_type: ScimType, detail: impl Into<String>) -> Self {
        Self::new(400, Some(scim_type), detail)
    }

    /// 400 `invalidSyntax`: the request body is not what the protocol expects.
    pub fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidSyntax, detail)
    }

    /// 400 `invalidValue`: a value is of the wrong type, missing or not allowed.
    pub fn invalid_value(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidValue, detail)
    }

    /// 400 `invalidFilter`: a filter does not parse or cannot be answered.
    pub fn invalid_filter(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidFilter, detail)
    }

    /// 400 `invalidPath`: an attribute path is malformed or names nothing.
    pub fn invalid_path(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::InvalidPath, detail)
    }

    /// 400 `noTarget`: a PATCH path selects nothing it could act on.
    pub fn no_target(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::NoTarget, detail)
    }

    /// 400 `mutability`: the request writes a readOnly or immutable attribute.
    pub fn mutability(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::Mutability, detail)
    }

    /// 400 `tooMany`: the request would return or touch too many resources.
    pub fn too_many(detail: impl Into<String>) -> Self {
        Self::bad_request(ScimType::TooMany, detail)
    }

    /// 409 `uniqueness`: a unique attribute's value is already taken.
    pub fn uniqueness(detail: impl Into<String>) -> Self {
        Self::new(409, Some(ScimType::Uniqueness), detail)
    }

    /// 404: the resource or endpoint does not exist.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, None, detail)
    }

    /// 401: the request is not authenticated.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(401, None, detail)
    }

    /// 412: the `If-Match` version is not the current one.
    pub fn precondition_failed(detail: impl Into<String>) -> Self {
        Self::new(412, None, detail)
    }

    /// An opaque 500; the cause is logged where it happened, never sent.
    pub fn internal() -> Self {
        Self::new(500, None, "internal error")
    }

    /// The RFC 7644 §3.12 error body. `status` is a string, as the RFC's
    /// examples and most IdPs expect; `scimType` is left out when there is none.
    pub fn to_json(&self) -> Value {
        let mut body = Map::new();
        body.insert("schemas".to_owned(), json!([ERROR_SCHEMA]));
        body.insert("status".to_owned(), Value::from(self.status.to_string()));
        if let Some(scim_type) = self.scim_type {
            body.insert("scimType".to_owned(), Value::from(scim_type.as_str()));
        }
        body.insert("detail".to_owned(), Value::from(self.detail.as_str()));
        Value::Object(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scim_type_round_trips_through_its_wire_spelling() {
        for t in ScimType::ALL {
            assert_eq!(ScimType::parse(t.as_str()), Some(t));
        }
        assert_eq!(ScimType::InvalidFilter.as_str(), "invalidFilter");
        assert_eq!(ScimType::NoTarget.as_str(), "noTarget");
        assert_eq!(ScimType::InvalidVers.as_str(), "invalidVers");
    }

    #[test]
    fn unknown_scim_type_is_not_parsed() {
        assert_eq!(ScimType::parse("notAType"), None);
        assert_eq!(ScimType::parse(""), None);
        assert_eq!(ScimType::parse("INVALIDVALUE"), Some(ScimType::InvalidValue));
    }

    #[test]
    fn error_body_has_string_status_and_scim_type() {
        let body = ScimError::invalid_value("userName is required").to_json();
        assert_eq!(
            body,
            json!({
                "schemas": [ERROR_SCHEMA],
                "status": "400",
                "scimType": "invalidValue",
                "detail": "userName is required",
            })
        );
        let keys: Vec<&str> = body
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        assert_eq!(keys, ["schemas", "status", "scimType", "detail"]);
    }

    #[test]
    fn error_body_omits_scim_type_when_there_is_none() {
        let body = ScimError::not_found("User 1 not found").to_json();
        assert_eq!(
            body,
            json!({"schemas": [ERROR_SCHEMA], "status": "404", "detail": "User 1 not found"})
        );
    }

    #[test]
    fn constructors_pick_the_rfc_status_and_type() {
        let cases = [
            (ScimError::invalid_syntax("x"), 400, Some(ScimType::InvalidSyntax)),
            (ScimError::invalid_value("x"), 400, Some(ScimType::InvalidValue)),
            (ScimError::invalid_filter("x"), 400, Some(ScimType::InvalidFilter)),
            (ScimError::invalid_path("x"), 400, Some(ScimType::InvalidPath)),
            (ScimError::no_target("x"), 400, Some(ScimType::NoTarget)),
            (ScimError::mutability("x"), 400, Some(ScimType::Mutability)),
            (ScimError::too_many("x"), 400, Some(ScimType::TooMany)),
            (
                ScimError::bad_request(ScimType::Sensitive, "x"),
                400,
                Some(ScimType::Sensitive),
            ),
            (ScimError::uniqueness("x"), 409, Some(ScimType::Uniqueness)),
            (ScimError::not_found("x"), 404, None),
            (ScimError::unauthorized("x"), 401, None),
            (ScimError::precondition_failed("x"), 412, None),
        ];
        for (err, status, scim_type) in cases {
            assert_eq!((err.status, err.scim_type), (status, scim_type), "{err:?}");
        }
    }

    #[test]
    fn internal_error_is_opaque() {
        let err = ScimError::internal();
        assert_eq!(
            (err.status, err.scim_type, err.to_string()),
            (500, None, "internal error".to_owned())
        );
    }
}
