//! `groups`: one row per group of a directory. Its members are rows of
//! `group_members`; only their number is kept here.

use sea_orm::entity::prelude::*;
use sea_orm::{SelectModel, Selector};

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "groups")]
pub struct Model {
    /// Server-assigned UUIDv7: opaque to clients, time-ordered for paging.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub directory_id: String,
    /// As the IdP sent it; not unique (Entra ID allows duplicates).
    pub display_name: String,
    /// Lower-cased `display_name`: displayName is not caseExact, and this
    /// is the indexed column behind `displayName eq` filters and sorting.
    pub display_name_folded: String,
    /// Unique within the directory when present.
    pub external_id: Option<String>,
    /// The normalised SCIM document without id, meta and members.
    pub resource: Json,
    /// `scim::filter::fold` of `resource`: what filters on attributes
    /// without a column of their own read.
    pub resource_folded: Json,
    /// How many rows of `group_members` the group has, kept up to date by
    /// every write from the rows it inserted and deleted, so that nothing
    /// counts a large group.
    pub member_count: i64,
    pub version: i64,
    pub created: TimeDateTimeWithTimeZone,
    pub last_modified: TimeDateTimeWithTimeZone,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// A List reads whole group rows.
impl idmesh_store::list::ListedRow<Entity> for Model {
    fn select(query: Select<Entity>) -> Selector<SelectModel<Model>> {
        query.into_model()
    }

    fn id(&self) -> &str {
        &self.id
    }

    fn size(&self) -> usize {
        scim::limits::json_len(&self.resource)
    }
}
