//! `profile_fields`: a directory's attribute mapping, one row per field.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "profile_fields")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub directory_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub position: i32,
    pub key: String,
    /// "string", "boolean", "integer", "timestamp" or "string_list".
    pub field_type: String,
    /// The source paths, in order, as a JSON array of strings.
    pub sources: Json,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
