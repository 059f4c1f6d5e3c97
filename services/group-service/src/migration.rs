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
            Box::new(IndexMembershipsByMemberFirst),
            Box::new(idmesh_outbox::CreateOutbox {
                name: "m0005_create_event_outbox",
                table: crate::events::OUTBOX_TABLE,
            }),
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
        // deleted user or group from every group. m0004 replaces it with
        // an index led by member_id.
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

struct IndexMembershipsByMemberFirst;

impl MigrationName for IndexMembershipsByMemberFirst {
    fn name(&self) -> &str {
        "m0004_index_memberships_by_member_first"
    }
}

/// The groups of a member, led by the member id instead of the directory.
///
/// Member ids are unique, so `member_id IN (…)` finds its rows directly
/// whatever the planner believes of the table. Led by `directory_id`, the
/// index let PostgreSQL, with statistics older than a bulk load (an initial
/// sync, before autovacuum analyses it), scan the whole directory and filter
/// on member_id: ListGroupsOfMember for 50 ids took 1.1 ms at 6,900
/// memberships and grew with the directory (docs/benchmarks.md,
/// role-mapping-service). `group_id` last makes the index cover the query,
/// in the order it asks for.
#[async_trait::async_trait]
impl MigrationTrait for IndexMembershipsByMemberFirst {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("group_members_by_member")
                    .table("group_members")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("group_members_by_member_id")
                    .table("group_members")
                    .col("member_id")
                    .col("directory_id")
                    .col("group_id")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("group_members_by_member_id")
                    .table("group_members")
                    .to_owned(),
            )
            .await?;
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
}

#[cfg(test)]
mod tests {
    use idmesh_testkit::{Backend, ScratchDatabase};
    use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, QueryTrait, Statement};

    use super::Migrator;

    /// A migrated database whose one directory holds 20,000 memberships,
    /// written in one statement and never analysed: what PostgreSQL knows
    /// of a table right after an initial sync, until autovacuum runs.
    async fn directory_after_a_bulk_load(backend: Backend) -> (ScratchDatabase, DatabaseConnection) {
        let database = ScratchDatabase::new(backend);
        let db = idmesh_store::connect(database.url()).await.expect("connect");
        idmesh_store::migrate::<Migrator>(&db).await.expect("migrate");
        let load = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) \
                    INSERT INTO group_members (directory_id, group_id, member_id, member_type, display, display_folded) \
                    SELECT 'd1', 'g' || (i % 1000), 'u' || i, 'User', '', '' FROM n";
        db.execute_unprepared(load).await.expect("memberships");
        (database, db)
    }

    /// How the database runs ListGroupsOfMember's query for 50 members.
    async fn plan(db: &DatabaseConnection) -> String {
        let backend = db.get_database_backend();
        let ids = (1..=50).map(|i| format!("u{}", i * 300)).collect();
        let query = crate::lookup::direct_memberships("d1", ids).build(backend);
        let explain = match backend {
            DbBackend::Postgres => "EXPLAIN",
            _ => "EXPLAIN QUERY PLAN",
        };
        let statement = Statement::from_sql_and_values(
            backend,
            format!("{explain} {}", query.sql),
            query.values.expect("bound values"),
        );
        let rows = db.query_all_raw(statement).await.expect("explain");
        let column = match backend {
            DbBackend::Postgres => "QUERY PLAN",
            _ => "detail",
        };
        rows.iter()
            .map(|row| row.try_get::<String>("", column).expect("a plan line"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[tokio::test]
    async fn the_groups_of_members_are_found_by_member_id_without_statistics_on_postgres() {
        let (_database, db) = directory_after_a_bulk_load(Backend::Postgres).await;
        let plan = plan(&db).await;
        let condition = plan
            .lines()
            .find(|line| line.contains("Index Cond"))
            .unwrap_or_else(|| panic!("no index condition in\n{plan}"));
        assert!(condition.contains("member_id"), "the directory is scanned:\n{plan}");
        assert!(plan.contains("group_members_by_member_id"), "{plan}");
    }

    #[tokio::test]
    async fn the_groups_of_members_are_found_by_member_id_on_sqlite() {
        let (_database, db) = directory_after_a_bulk_load(Backend::Sqlite).await;
        let plan = plan(&db).await;
        assert!(plan.contains("INDEX group_members_by_member_id (member_id="), "{plan}");
    }

    /// One member's direct groups run on the plan-cached pool
    /// (`idmesh_store::connect_plan_cached`), where PostgreSQL may keep the
    /// generic plan it makes after five executions for the connection's
    /// life. Made on tables that are empty and were never analysed, as in
    /// a new deployment, that plan must still read by index.
    #[tokio::test]
    async fn one_members_groups_keep_an_index_plan_made_on_empty_tables() {
        let database = ScratchDatabase::new(Backend::Postgres);
        let db = idmesh_store::connect(database.url()).await.expect("connect");
        idmesh_store::migrate::<Migrator>(&db).await.expect("migrate");
        let plan =
            idmesh_testkit::postgres_generic_plan(&db, crate::lookup::GROUPS_OF_ONE.postgres, &["u1", "d1"]).await;
        assert!(plan.contains("using group_members_by_member_id"), "{plan}");
        assert!(plan.contains("using groups_pkey"), "{plan}");
        assert!(!plan.contains("Seq Scan") && !plan.contains("Filter"), "{plan}");
    }

    #[tokio::test]
    async fn one_members_groups_and_their_names_are_read_by_index_without_statistics() {
        use crate::lookup::{GROUPS_ABOVE_ONE, GROUPS_OF_ONE, MEMBERSHIPS_ABOVE_ONE};
        for backend in [Backend::Postgres, Backend::Sqlite] {
            let (_database, db) = directory_after_a_bulk_load(backend).await;
            let groups = "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 999) \
                          INSERT INTO groups (id, directory_id, display_name, display_name_folded, resource, \
                          resource_folded, member_count, version, created, last_modified) \
                          SELECT 'g' || i, 'd1', 'G' || i, 'g' || i, '{}', '{}', 20, 1, CURRENT_TIMESTAMP, \
                          CURRENT_TIMESTAMP FROM n";
            db.execute_unprepared(groups).await.expect("groups");
            let nesting = "INSERT INTO group_members (directory_id, group_id, member_id, member_type, display, \
                           display_folded) VALUES ('d1', 'g1', 'g300', 'Group', '', '')";
            db.execute_unprepared(nesting).await.expect("a group in a group");
            for (sql, params) in [
                (GROUPS_OF_ONE, vec!["u300", "d1"]),
                (GROUPS_ABOVE_ONE, vec!["u300", "d1", "d1"]),
                (MEMBERSHIPS_ABOVE_ONE, vec!["u300", "d1", "d1"]),
            ] {
                let (explain, sql, column) = match backend {
                    Backend::Postgres => ("EXPLAIN", sql.postgres, "QUERY PLAN"),
                    Backend::Sqlite => ("EXPLAIN QUERY PLAN", sql.sqlite, "detail"),
                };
                let statement = Statement::from_sql_and_values(
                    db.get_database_backend(),
                    format!("{explain} {sql}"),
                    params.into_iter().map(sea_orm::Value::from),
                );
                let rows = db.query_all_raw(statement).await.expect("explain");
                let plan = rows
                    .iter()
                    .map(|row| row.try_get::<String>("", column).expect("a plan line"))
                    .collect::<Vec<_>>()
                    .join("\n");
                assert!(plan.contains("group_members_by_member_id"), "{backend:?}:\n{plan}");
                // Walking the rows reached so far (`reached`, `r`, `d`) is
                // the recursion itself; walking a table is not.
                let scans_a_table = plan.lines().any(|line| match backend {
                    Backend::Postgres => line.contains("Seq Scan"),
                    Backend::Sqlite => line
                        .trim()
                        .strip_prefix("SCAN ")
                        .and_then(|rest| rest.split_whitespace().next())
                        .is_some_and(|scanned| ["group_members", "groups", "m", "g"].contains(&scanned)),
                });
                assert!(!scans_a_table, "{backend:?}:\n{plan}");
            }
        }
    }

    #[tokio::test]
    async fn the_member_first_index_migrates_down_and_up_again() {
        use sea_orm_migration::MigratorTrait;
        for backend in [Backend::Sqlite, Backend::Postgres] {
            let (_database, db) = directory_after_a_bulk_load(backend).await;
            Migrator::down(&db, Some(1)).await.expect("down");
            Migrator::up(&db, None).await.expect("up again");
            assert!(plan(&db).await.contains("group_members_by_member_id"), "{backend:?}");
        }
    }
}
