//! `role_mappings`: a directory's mode and default role; its rules are rows
//! of `role_rules`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "role_mappings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub directory_id: String,
    /// "single" or "multiple".
    pub mode: String,
    /// Empty: no default role.
    pub default_role: String,
    pub version: i64,
    pub last_modified: TimeDateTimeWithTimeZone,
    /// Whether losing a role revokes the user's sessions.
    pub revoke_sessions: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
