//! The plan PostgreSQL keeps for a prepared statement once it stops
//! planning it at each execution.

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait};

/// The generic plan PostgreSQL makes for `sql` (parameters `$1`, `$2`…) on
/// `db` as its tables are now, as `EXPLAIN EXECUTE` shows it under
/// `plan_cache_mode = force_generic_plan`: what a statement prepared by
/// name may run at every execution once its first five are past. `args`
/// fill the parameters; a generic plan does not depend on them.
pub async fn postgres_generic_plan(db: &DatabaseConnection, sql: &str, args: &[&str]) -> String {
    const NAME: &str = "plan_under_test";
    // One connection throughout: a prepared statement is its session's.
    let txn = db.begin().await.expect("a transaction");
    txn.execute_unprepared("SET LOCAL plan_cache_mode = force_generic_plan")
        .await
        .expect("generic plans");
    txn.execute_unprepared(&format!("PREPARE {NAME} AS {sql}"))
        .await
        .expect("the statement prepares");
    let args = args
        .iter()
        .map(|arg| format!("'{}'", arg.replace('\'', "''")))
        .collect::<Vec<_>>()
        .join(", ");
    let explain = Statement::from_string(DbBackend::Postgres, format!("EXPLAIN EXECUTE {NAME}({args})"));
    let rows = txn.query_all_raw(explain).await.expect("the plan");
    // Prepared statements outlive transactions.
    txn.execute_unprepared(&format!("DEALLOCATE {NAME}"))
        .await
        .expect("deallocate");
    txn.rollback().await.expect("rollback");
    rows.iter()
        .map(|row| row.try_get::<String>("", "QUERY PLAN").expect("a plan line"))
        .collect::<Vec<_>>()
        .join("\n")
}
