//! Users and groups as the gateway renders them: one shape for every
//! resource type, with the document parsed once.

use idmesh_proto::v1 as proto;
use scim::ScimError;
use serde_json::{Map, Value};

use crate::document;
use crate::meta::Meta;

/// A stored SCIM resource, as a service answered it.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub id: String,
    pub directory_id: String,
    /// The document without `id` and `meta` (and without a group's members,
    /// which are rows of their own).
    pub document: Map<String, Value>,
    pub meta: Meta,
    /// How many direct members a group has; 0 for every other type.
    pub member_count: u64,
}

impl TryFrom<proto::User> for Resource {
    type Error = ScimError;

    fn try_from(user: proto::User) -> Result<Self, ScimError> {
        Ok(Resource {
            document: document::from_service(&user.resource_json)?,
            meta: Meta::from_service(user.meta)?,
            id: user.id,
            directory_id: user.directory_id,
            member_count: 0,
        })
    }
}

impl TryFrom<proto::Group> for Resource {
    type Error = ScimError;

    fn try_from(group: proto::Group) -> Result<Self, ScimError> {
        Ok(Resource {
            document: document::from_service(&group.resource_json)?,
            meta: Meta::from_service(group.meta)?,
            id: group.id,
            directory_id: group.directory_id,
            member_count: u64::try_from(group.member_count).unwrap_or_default(),
        })
    }
}
