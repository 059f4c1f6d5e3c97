//! `role_rules`: one row per (rule, role) of a directory's mapping, so that
//! the mappings using a role are one indexed query.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "role_rules")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub directory_id: String,
    /// The rule's position in the mapping.
    #[sea_orm(primary_key, auto_increment = false)]
    pub position: i32,
    /// The role's position within the rule.
    #[sea_orm(primary_key, auto_increment = false)]
    pub role_index: i32,
    /// Exactly one of `group_id` and `roles_value` is set.
    pub group_id: Option<String>,
    pub roles_value: Option<String>,
    pub role_key: String,
    pub precedence: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
