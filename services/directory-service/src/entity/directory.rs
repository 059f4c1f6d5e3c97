//! `directories`: one row per tenant.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "directories")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub name: String,
    pub created: TimeDateTimeWithTimeZone,
    /// The directory's own gateway rate, with `rate_limit_burst`; both null
    /// for the deployment's default.
    pub rate_limit_per_second: Option<i32>,
    pub rate_limit_burst: Option<i32>,
}

impl Model {
    /// The directory's own rate, if it has one.
    pub fn rate_limit(&self) -> Option<idmesh_proto::v1::RateLimit> {
        let (Some(per_second), Some(burst)) = (self.rate_limit_per_second, self.rate_limit_burst) else {
            return None;
        };
        Some(idmesh_proto::v1::RateLimit {
            requests_per_second: u32::try_from(per_second).unwrap_or(1),
            burst: u32::try_from(burst).unwrap_or(1),
        })
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
