//! `deleted_members`: the ids RemoveMemberEverywhere was called for (users
//! user-service deleted), so that a write that looked a user up before its
//! deletion and commits after it does not make it a member again. Ids are
//! UUIDv7 and never reused, so a row is kept for good.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "deleted_members")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub directory_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub member_id: String,
    /// When group-service was told of the deletion.
    pub deleted: TimeDateTimeWithTimeZone,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
