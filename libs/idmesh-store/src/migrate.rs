//! The migration runner every service uses for its own tables.

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use sea_orm_migration::MigratorTrait;
use tokio::sync::Mutex;

use crate::StoreError;

/// Arbitrary key of the PostgreSQL advisory lock that serialises migrations
/// across processes (replicas starting together).
const MIGRATION_LOCK_KEY: i64 = 0x1d_3e5b;

/// Serialises migrations within one process: in `idmesh dev` several services
/// migrate the same SQLite file at once.
static IN_PROCESS: Mutex<()> = Mutex::const_new(());

/// Applies `M`'s pending migrations in one transaction, holding a lock so
/// that replicas starting together do not race.
pub async fn migrate<M: MigratorTrait>(db: &DatabaseConnection) -> Result<(), StoreError> {
    let _guard = IN_PROCESS.lock().await;
    let txn = crate::begin_write(db, None).await?;
    if db.get_database_backend() == DbBackend::Postgres {
        txn.query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})"),
        ))
        .await?;
    }
    M::up(&txn, None).await?;
    txn.commit().await?;
    Ok(())
}
