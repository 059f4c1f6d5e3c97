//! How far events-service trails: the events waiting in an outbox, and how
//! long the oldest has waited, as gauges refreshed every few seconds.

use std::time::Duration;

use idmesh_proto::v1::Event;
use prost::Message;
use sea_orm::sea_query::{Alias, Expr, Func, Order, Query};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr};
use tokio_util::sync::CancellationToken;

use crate::Outbox;

/// Events waiting in a service's outbox, labelled by `service`.
pub const PENDING_METRIC: &str = "idmesh_event_outbox_pending";
/// Seconds since the oldest waiting event's change committed (0 when none
/// waits), labelled by `service`.
pub const OLDEST_METRIC: &str = "idmesh_event_outbox_oldest_seconds";

/// How often the gauges are refreshed.
const EVERY: Duration = Duration::from_secs(5);

/// The number of waiting events, and the time of the oldest.
async fn backlog(db: &DatabaseConnection, outbox: &Outbox) -> Result<(u64, Option<prost_types::Timestamp>), DbErr> {
    let table = Alias::new(outbox.table);
    let count = Query::select()
        .expr_as(Func::count(Expr::col(Alias::new("id"))), Alias::new("pending"))
        .from(table.clone())
        .to_owned();
    let pending: i64 = match db.query_one(&count).await? {
        Some(row) => row.try_get("", "pending")?,
        None => 0,
    };
    let oldest = Query::select()
        .column(Alias::new("event"))
        .from(table)
        .order_by(Alias::new("id"), Order::Asc)
        .limit(1)
        .to_owned();
    let time = match db.query_one(&oldest).await? {
        Some(row) => {
            let bytes: Vec<u8> = row.try_get("", "event")?;
            Event::decode(bytes.as_slice())
                .map_err(|err| DbErr::Custom(format!("an outbox row does not decode: {err}")))?
                .time
        }
        None => None,
    };
    Ok((u64::try_from(pending).unwrap_or(0), time))
}

/// Refreshes `service`'s outbox gauges every few seconds until `shutdown`.
pub(crate) async fn measure(
    db: DatabaseConnection,
    outbox: Outbox,
    service: &'static str,
    shutdown: CancellationToken,
) {
    loop {
        match backlog(&db, &outbox).await {
            Ok((pending, oldest)) => {
                let waited = oldest
                    .and_then(|time| std::time::SystemTime::try_from(time).ok())
                    .and_then(|time| time.elapsed().ok())
                    .map_or(0.0, |waited| waited.as_secs_f64());
                metrics::gauge!(PENDING_METRIC, "service" => service).set(pending as f64);
                metrics::gauge!(OLDEST_METRIC, "service" => service).set(waited);
            }
            Err(err) => tracing::warn!(error = %err, service, "could not measure the event outbox"),
        }
        tokio::select! {
            () = tokio::time::sleep(EVERY) => {}
            () = shutdown.cancelled() => return,
        }
    }
}
