//! group-service's schema, tracked in its own migrations table so that it
//! can share a database with the other services.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, json_binary, string, string_null, timestamp_with_time_zone};

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateGroups),
            Box::new(CreateGroupMembers),
            Box::new(CreateDeletedMembers),
        ]
    }

    fn migration_table_name() -> DynIden {
        "group_service_migrations".into_iden()
    }
}

struct CreateGroups;

impl MigrationName for CreateGroups {
    fn name(&self) -> &str {
        "m0001_create_groups"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateGroups {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("groups")
                    .col(string("id").primary_key())
                    .col(string("directory_id"))
                    .col(string("display_name"))
                    .col(string("display_name_folded"))
                    .col(string_null("external_id"))
                    .col(json_binary("resource"))
                    .col(json_binary("resource_folded"))
                    .col(big_integer("member_count"))
                    .col(big_integer("version"))
                    .col(timestamp_with_time_zone("created"))
                    .col(timestamp_with_time_zone("last_modified"))
                    .to_owned(),
            )
            .await?;
        // externalId is unique per directory when present; NULLs never
        // collide, on either database.
        manager
            .create_index(
                Index::create()
                    .name("groups_unique_external_id")
                    .table("groups")
                    .col("directory_id")
                    .col("external_id")
                    .unique()
                    .to_owned(),
            )
            .await?;
        // `displayName eq` filters and sorting by displayName.
        manager
            .create_index(
                Index::create()
                    .name("groups_by_display_name")
                    .table("groups")
                    .col("directory_id")
                    .col("display_name_folded")
                    .to_owned(),
            )
            .await?;
        // Listing pages through a directory in id order.
        manager
            .create_index(
                Index::create()
                    .name("groups_by_directory")
                    .table("groups")
                    .col("directory_id")
                    .col("id")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table("groups").to_owned()).await
    }
}

struct CreateGroupMembers;

impl MigrationName for CreateGroupMembers {
    fn name(&self) -> &str {
        "m0002_create_group_members"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateGroupMembers {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The primary key (group_id, member_id) is also what pages through
        // a group's members in id order, and what makes adding a present
        // member a no-op (ON CONFLICT DO NOTHING).
        manager
            .create_table(
                Table::create()
                    .table("group_members")
                    .col(string("directory_id"))
                    .col(string("group_id"))
                    .col(string("member_id"))
                    .col(string("member_type"))
                    .col(string("display"))
                    .col(string("display_folded"))
                    .primary_key(Index::create().col("group_id").col("member_id"))
                    .to_owned(),
            )
            .await?;
        // The groups of a member: ListGroupsOfMember, and removing a
        // deleted user or group from every group.
        manager
            .create_index(
                Index::create()
                    .name("group_members_by_member")
                    .table("group_members")
                    .col("directory_id")
                    .col("member_id")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("group_members").to_owned())
            .await
    }
}

struct CreateDeletedMembers;

impl MigrationName for CreateDeletedMembers {
    fn name(&self) -> &str {
        "m0003_create_deleted_members"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateDeletedMembers {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // The primary key is what a write adding users looks them up by.
        manager
            .create_table(
                Table::create()
                    .table("deleted_members")
                    .col(string("directory_id"))
                    .col(string("member_id"))
                    .col(timestamp_with_time_zone("deleted"))
                    .primary_key(Index::create().col("directory_id").col("member_id"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("deleted_members").to_owned())
            .await
    }
}
