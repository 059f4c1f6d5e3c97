//! The query parameters of a request about one resource: `attributes` and
//! `excludedAttributes` (RFC 7644 §3.9), on GET and on the responses to
//! POST, PUT and PATCH. Any other parameter is 400 `invalidValue`, so a
//! misspelt one is not silently ignored.

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use scim::ScimError;
use scim::attributes::Projection;
use scim::schema::ResourceSchema;

use crate::error::ApiError;

/// `attributes` and `excludedAttributes` as the client wrote them.
#[derive(Debug, Default)]
pub struct AttributeQuery {
    attributes: Option<String>,
    excluded: Option<String>,
}

impl AttributeQuery {
    /// What responses about a resource of `schema` carry.
    pub fn projection(&self, schema: &ResourceSchema) -> Result<Projection, ApiError> {
        Ok(Projection::parse(
            self.attributes.as_deref(),
            self.excluded.as_deref(),
            schema,
        )?)
    }

    /// Whether the client named `attributes` or `excludedAttributes` at all.
    pub fn is_given(&self) -> bool {
        self.attributes.is_some() || self.excluded.is_some()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AttributeQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(pairs) = Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| ScimError::invalid_value(format!("cannot read the query string: {rejection}")))?;
        let mut query = AttributeQuery::default();
        for (name, value) in pairs {
            match name.to_ascii_lowercase().as_str() {
                "attributes" => query.attributes = Some(value),
                "excludedattributes" => query.excluded = Some(value),
                _ => {
                    return Err(ScimError::invalid_value(format!(
                        "unsupported query parameter {name}: a single resource takes attributes and excludedAttributes"
                    ))
                    .into());
                }
            }
        }
        Ok(query)
    }
}
