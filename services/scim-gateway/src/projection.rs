//! The query parameters of a request about one resource, read by
//! [`scim::attributes::AttributeParams`]: `attributes` and
//! `excludedAttributes`; any other is 400 `invalidValue`.

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use scim::ScimError;
use scim::attributes::{AttributeParams, Projection};
use scim::schema::ResourceSchema;

use crate::error::ApiError;

/// `attributes` and `excludedAttributes` as the client wrote them.
#[derive(Debug, Default)]
pub struct AttributeQuery(AttributeParams);

impl AttributeQuery {
    /// What responses about a resource of `schema` carry.
    pub fn projection(&self, schema: &ResourceSchema) -> Result<Projection, ApiError> {
        Ok(self.0.projection(schema)?)
    }

    /// Whether the client named `attributes` or `excludedAttributes` at all.
    pub fn is_given(&self) -> bool {
        self.0.is_given()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AttributeQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(pairs) = Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|rejection| ScimError::invalid_value(format!("cannot read the query string: {rejection}")))?;
        let params = AttributeParams::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
        Ok(AttributeQuery(params))
    }
}
