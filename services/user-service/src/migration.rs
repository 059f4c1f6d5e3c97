//! user-service's schema, tracked in its own migrations table so that it can
//! share a database with the other services.

use scim::schema::USER_RESOURCE;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, boolean, json_binary, json_binary_null, string, string_null, text_null, timestamp_with_time_zone,
};

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateUsers), Box::new(AddFoldedResource)]
    }

    fn migration_table_name() -> DynIden {
        "user_service_migrations".into_iden()
    }
}

struct CreateUsers;

impl MigrationName for CreateUsers {
    fn name(&self) -> &str {
        "m0001_create_users"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateUsers {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("users")
                    .col(string("id").primary_key())
                    .col(string("directory_id"))
                    .col(string("user_name"))
                    .col(string("user_name_folded"))
                    .col(string_null("external_id"))
                    .col(boolean("active"))
                    .col(string_null("display_name"))
                    .col(json_binary("resource"))
                    .col(text_null("password_hash"))
                    .col(big_integer("version"))
                    .col(timestamp_with_time_zone("created"))
                    .col(timestamp_with_time_zone("last_modified"))
                    .to_owned(),
            )
            .await?;
        // userName is unique per directory, ignoring case (RFC 7643 §4.1.1).
        manager
            .create_index(
                Index::create()
                    .name("users_unique_user_name")
                    .table("users")
                    .col("directory_id")
                    .col("user_name_folded")
                    .unique()
                    .to_owned(),
            )
            .await?;
        // Okta and Entra look users up by externalId.
        manager
            .create_index(
                Index::create()
                    .name("users_by_external_id")
                    .table("users")
                    .col("directory_id")
                    .col("external_id")
                    .to_owned(),
            )
            .await?;
        // Listing pages through a directory in id order.
        manager
            .create_index(
                Index::create()
                    .name("users_by_directory")
                    .table("users")
                    .col("directory_id")
                    .col("id")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table("users").to_owned()).await
    }
}

/// Adds `resource_folded`, the case-folded document that filters and
/// sorting read, and fills it in for the users already stored.
struct AddFoldedResource;

impl MigrationName for AddFoldedResource {
    fn name(&self) -> &str {
        "m0002_add_resource_folded"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddFoldedResource {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("users")
                    .add_column(json_binary_null("resource_folded"))
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        let backend = db.get_database_backend();
        let rows = db
            .query_all_raw(Statement::from_string(backend, "SELECT id, resource FROM users"))
            .await?;
        let update = match backend {
            DbBackend::Postgres => "UPDATE users SET resource_folded = $1 WHERE id = $2",
            _ => "UPDATE users SET resource_folded = ? WHERE id = ?",
        };
        for row in rows {
            let id: String = row.try_get("", "id")?;
            let resource: serde_json::Value = row.try_get("", "resource")?;
            let folded = match &resource {
                serde_json::Value::Object(doc) => serde_json::Value::Object(scim::filter::fold(doc, &USER_RESOURCE)),
                other => other.clone(),
            };
            db.execute_raw(Statement::from_sql_and_values(
                backend,
                update,
                [folded.into(), id.into()],
            ))
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(Table::alter().table("users").drop_column("resource_folded").to_owned())
            .await
    }
}
