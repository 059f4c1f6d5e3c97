//! role-mapping-service's schema, tracked in its own migrations table so
//! that it can share a database with the other services.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, boolean, integer, json_binary, string, string_null, timestamp_with_time_zone,
};

use crate::follow::OUTBOX_TABLE;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateRoleTables),
            Box::new(FollowTheLog),
            Box::new(idmesh_outbox::CreateOutbox {
                name: "m0003_create_role_event_outbox",
                table: OUTBOX_TABLE,
            }),
        ]
    }

    fn migration_table_name() -> DynIden {
        "role_mapping_service_migrations".into_iden()
    }
}

struct CreateRoleTables;

impl MigrationName for CreateRoleTables {
    fn name(&self) -> &str {
        "m0001_create_role_tables"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateRoleTables {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("roles")
                    .col(string("key").primary_key())
                    .col(string("name"))
                    .col(string("description"))
                    .col(timestamp_with_time_zone("created"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("role_mappings")
                    .col(string("directory_id").primary_key())
                    .col(string("mode"))
                    .col(string("default_role"))
                    .col(big_integer("version"))
                    .col(timestamp_with_time_zone("last_modified"))
                    .to_owned(),
            )
            .await?;
        // The primary key reads a directory's rules in order.
        manager
            .create_table(
                Table::create()
                    .table("role_rules")
                    .col(string("directory_id"))
                    .col(integer("position"))
                    .col(integer("role_index"))
                    .col(string_null("group_id"))
                    .col(string_null("roles_value"))
                    .col(string("role_key"))
                    .col(integer("precedence"))
                    .primary_key(Index::create().col("directory_id").col("position").col("role_index"))
                    .to_owned(),
            )
            .await?;
        // Which mappings use a role: what refuses deleting it.
        manager
            .create_index(
                Index::create()
                    .name("role_rules_by_role")
                    .table("role_rules")
                    .col("role_key")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("role_mappings_by_default_role")
                    .table("role_mappings")
                    .col("default_role")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("profile_fields")
                    .col(string("directory_id"))
                    .col(integer("position"))
                    .col(string("key"))
                    .col(string("field_type"))
                    .col(json_binary("sources"))
                    .primary_key(Index::create().col("directory_id").col("position"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["profile_fields", "role_rules", "role_mappings", "roles"] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

/// What following the change log needs: the option to revoke sessions on a
/// role's removal, the roles last announced and how far each directory is
/// followed.
struct FollowTheLog;

impl MigrationName for FollowTheLog {
    fn name(&self) -> &str {
        "m0002_follow_the_log"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for FollowTheLog {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("role_mappings")
                    .add_column(boolean("revoke_sessions").default(false))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("role_holdings")
                    .col(string("directory_id"))
                    .col(string("user_id"))
                    .col(string("role_key"))
                    .primary_key(Index::create().col("directory_id").col("user_id").col("role_key"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("role_followers")
                    .col(string("directory_id").primary_key())
                    .col(big_integer("after_sequence"))
                    .col(big_integer("mapping_version"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["role_followers", "role_holdings"] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table("role_mappings")
                    .drop_column("revoke_sessions")
                    .to_owned(),
            )
            .await
    }
}
