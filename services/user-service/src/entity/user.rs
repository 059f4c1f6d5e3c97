//! `users`: one row per user of a directory.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    /// Server-assigned UUIDv7: opaque to clients, time-ordered for paging.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub directory_id: String,
    /// As the IdP sent it.
    pub user_name: String,
    /// Lower-cased `user_name`: unique per directory, the index behind
    /// case-insensitive `userName` filters.
    pub user_name_folded: String,
    pub external_id: Option<String>,
    pub active: bool,
    pub display_name: Option<String>,
    /// The normalised SCIM document, without id, meta and password.
    pub resource: Json,
    /// `scim::filter::fold` of `resource`: what filters and sorting read,
    /// so that case-insensitive comparison is the same on every database.
    pub resource_folded: Json,
    /// Argon2 PHC string of the password an IdP sent, if any.
    pub password_hash: Option<String>,
    pub version: i64,
    pub created: TimeDateTimeWithTimeZone,
    pub last_modified: TimeDateTimeWithTimeZone,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
