//! user-service's schema, tracked in its own migrations table so that it can
//! share a database with the other services.

use scim::schema::USER_RESOURCE;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::{
    big_integer, boolean, integer, json_binary, json_binary_null, string, string_null, text_null,
    timestamp_with_time_zone,
};

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(CreateUsers),
            Box::new(AddFoldedResource),
            Box::new(CreateSessionRevocations),
            Box::new(AddMembershipRemoval),
            Box::new(AddTraceContext),
            Box::new(idmesh_outbox::CreateOutbox {
                name: "m0006_create_event_outbox",
                table: crate::service::OUTBOX_TABLE,
            }),
        ]
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

/// The outbox of session revocations waiting for delivery
/// (`entity::session_revocation`).
struct CreateSessionRevocations;

impl MigrationName for CreateSessionRevocations {
    fn name(&self) -> &str {
        "m0003_create_session_revocations"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for CreateSessionRevocations {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("session_revocations")
                    .col(string("id").primary_key())
                    .col(string("directory_id"))
                    .col(string("user_id"))
                    .col(string("reason"))
                    .col(timestamp_with_time_zone("created"))
                    .col(integer("attempts"))
                    .col(big_integer("deliver_after"))
                    .col(string_null("claim"))
                    .col(text_null("last_error"))
                    .to_owned(),
            )
            .await?;
        // Deliverers claim the rows that are due, earliest first.
        manager
            .create_index(
                Index::create()
                    .name("session_revocations_by_deliver_after")
                    .table("session_revocations")
                    .col("deliver_after")
                    .to_owned(),
            )
            .await?;
        // A claimant reads back the rows it claimed.
        manager
            .create_index(
                Index::create()
                    .name("session_revocations_by_claim")
                    .table("session_revocations")
                    .col("claim")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("session_revocations").to_owned())
            .await
    }
}

/// A deleted user leaves its groups: the outbox row that revokes its
/// sessions also asks group-service to remove its memberships. Rows stored
/// before this migration only revoke sessions, as they did.
struct AddMembershipRemoval;

impl MigrationName for AddMembershipRemoval {
    fn name(&self) -> &str {
        "m0004_add_membership_removal"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddMembershipRemoval {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("session_revocations")
                    .add_column(boolean("remove_memberships").default(false))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("session_revocations")
                    .drop_column("remove_memberships")
                    .to_owned(),
            )
            .await
    }
}

/// A revocation remembers the trace of the request that stored it, so that
/// a delivery retried later joins that trace. Rows stored before this
/// migration are delivered in traces of their own.
struct AddTraceContext;

impl MigrationName for AddTraceContext {
    fn name(&self) -> &str {
        "m0005_add_trace_context"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddTraceContext {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("session_revocations")
                    .add_column(text_null("traceparent"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("session_revocations")
                    .drop_column("traceparent")
                    .to_owned(),
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use idmesh_testkit::{Backend, ScratchDatabase};
    use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
    use serde_json::{Value, json};

    use super::Migrator;
    use sea_orm_migration::MigratorTrait;

    /// A database at the first migration, holding one user written by it.
    async fn database_before_folding(db: &DatabaseConnection) {
        Migrator::up(db, Some(1)).await.expect("first migration");
        let backend = db.get_database_backend();
        let resource = json!({"userName": "Ada@Example.COM", "title": "Chief ÉNGINEER", "externalId": "Ext-1"});
        let insert = "INSERT INTO users (id, directory_id, user_name, user_name_folded, external_id, active, \
                      display_name, resource, password_hash, version, created, last_modified) \
                      VALUES ('u1', 'd1', 'Ada@Example.COM', 'ada@example.com', 'Ext-1', TRUE, NULL, $1, NULL, 1, \
                      CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)";
        let insert = match backend {
            sea_orm::DbBackend::Postgres => insert.to_owned(),
            _ => insert.replace("$1", "?"),
        };
        db.execute_raw(Statement::from_sql_and_values(backend, insert, [resource.into()]))
            .await
            .expect("a user from before the migration");
    }

    async fn folded_after_migrating(db: &DatabaseConnection) -> Value {
        idmesh_store::migrate::<Migrator>(db).await.expect("migrate");
        let row = db
            .query_one_raw(Statement::from_string(
                db.get_database_backend(),
                "SELECT resource_folded FROM users WHERE id = 'u1'",
            ))
            .await
            .expect("select")
            .expect("the user");
        row.try_get("", "resource_folded").expect("a folded document")
    }

    const FOLDED: &str = r#"{"userName": "ada@example.com", "title": "chief éngineer", "externalId": "Ext-1"}"#;

    #[tokio::test]
    async fn existing_users_get_a_folded_document_on_sqlite() {
        let database = ScratchDatabase::new(Backend::Sqlite);
        let db = idmesh_store::connect(database.url()).await.expect("connect");
        database_before_folding(&db).await;
        let expected: Value = serde_json::from_str(FOLDED).expect("json");
        assert_eq!(folded_after_migrating(&db).await, expected);
    }

    #[tokio::test]
    async fn existing_users_get_a_folded_document_on_postgres() {
        let database = ScratchDatabase::new(Backend::Postgres);
        let db = idmesh_store::connect(database.url()).await.expect("connect");
        database_before_folding(&db).await;
        let expected: Value = serde_json::from_str(FOLDED).expect("json");
        assert_eq!(folded_after_migrating(&db).await, expected);
    }
}
