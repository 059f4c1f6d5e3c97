//! role-mapping-service's schema, tracked in its own migrations table so
//! that it can share a database with the other services.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{big_integer, integer, json_binary, string, string_null, timestamp_with_time_zone};

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateRoleTables)]
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
