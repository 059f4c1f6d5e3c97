//! `group_members`: one row per direct member of a group.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "group_members")]
pub struct Model {
    pub directory_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub group_id: String,
    /// The id of a user or a group of the same directory.
    #[sea_orm(primary_key, auto_increment = false)]
    pub member_id: String,
    /// "User" or "Group".
    pub member_type: String,
    /// The `display` the client sent with the member (Okta sends the
    /// member's name); empty when it sent none.
    pub display: String,
    /// Lower-cased `display`, for filters on `members.display`, which is
    /// not caseExact.
    pub display_folded: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// What `member_type` holds for a user.
pub const USER: &str = "User";
/// What `member_type` holds for a group.
pub const GROUP: &str = "Group";
/// Every value `member_type` holds.
pub const MEMBER_TYPES: [&str; 2] = [USER, GROUP];
