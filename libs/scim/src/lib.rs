//! SCIM 2.0 (RFC 7643 / RFC 7644) as a pure library: schemas, attribute
//! paths, filters, resource validation, PATCH, list responses, rendering and
//! errors. No I/O; every input may come from the network, so nothing here
//! panics on bad input — it answers with a [`ScimError`].
//!
//! The IdP dialects idmesh accepts (Microsoft Entra ID's boolean strings
//! and URN-keyed PATCH values, bare and listed manager ids, its
//! `aadOptscim062020` query flag and sub-attributes after value filters,
//! Okta's path-less replace) are handled here, once, so every caller gets the same answers.

pub mod attributes;
pub mod bulk;
pub mod dialect;
pub mod discovery;
pub mod error;
pub mod filter;
mod json;
pub mod limits;
pub mod list;
pub mod members;
pub mod meta;
pub mod patch;
pub mod path;
pub mod resource;
pub mod schema;
pub mod select;
#[cfg(test)]
mod test_support;

pub use error::{ScimError, ScimType};
pub use limits::Limits;
