//! `idmesh.v1.OutboxService`: how events-service drains a service's outbox.

use std::time::Duration;

use idmesh_proto::v1::outbox_service_server::{OutboxService, OutboxServiceServer};
use idmesh_proto::v1::{AckOutboxRequest, AckOutboxResponse, PullOutboxRequest, PullOutboxResponse};
use sea_orm::{DatabaseConnection, DbErr};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::backlog::measure;
use crate::{MAX_BATCH, Outbox};

/// The longest a pull waits for an event.
const MAX_WAIT: Duration = Duration::from_secs(30);

/// How often a waiting pull looks again: events another replica of the
/// service wrote do not wake it.
const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// The OutboxService of one service's outbox.
#[derive(Debug, Clone)]
pub struct OutboxApi {
    db: DatabaseConnection,
    outbox: Outbox,
    /// The service's name, for errors and logs.
    service: &'static str,
}

impl OutboxApi {
    /// The fully qualified gRPC service name, for health reporting.
    pub const SERVICE_NAME: &'static str = "idmesh.v1.OutboxService";

    pub fn new(db: DatabaseConnection, outbox: Outbox, service: &'static str) -> OutboxApi {
        OutboxApi { db, outbox, service }
    }

    /// The OutboxService of `service`'s `outbox`, ready to add beside the
    /// service's own API, with the outbox's backlog gauges
    /// ([`measure`]) refreshed until `stop`.
    pub fn server(
        db: DatabaseConnection,
        outbox: Outbox,
        service: &'static str,
        stop: CancellationToken,
    ) -> OutboxServiceServer<OutboxApi> {
        tokio::spawn(measure(db.clone(), outbox.clone(), service, stop));
        idmesh_runtime::with_message_limits!(OutboxServiceServer::new(OutboxApi::new(db, outbox, service)))
    }

    fn status(&self, err: &DbErr) -> Status {
        if idmesh_store::is_transient(err) {
            idmesh_api::status::unavailable(self.service, err)
        } else {
            idmesh_api::status::internal(self.service, err)
        }
    }
}

/// A count from a request, within 1..=MAX_BATCH; 0 means the most.
fn batch_size(requested: i32) -> Result<usize, Status> {
    match usize::try_from(requested) {
        Ok(0) => Ok(MAX_BATCH),
        Ok(n) if n <= MAX_BATCH => Ok(n),
        _ => Err(idmesh_api::status::invalid_argument(format!(
            "limit must be between 0 and {MAX_BATCH}, not {requested}"
        ))),
    }
}

#[tonic::async_trait]
impl OutboxService for OutboxApi {
    async fn pull_outbox(&self, request: Request<PullOutboxRequest>) -> Result<Response<PullOutboxResponse>, Status> {
        let request = request.into_inner();
        let limit = batch_size(request.limit)?;
        let wait = u64::try_from(request.wait_millis)
            .map(Duration::from_millis)
            .map_err(|_| idmesh_api::status::invalid_argument("wait_millis must not be negative"))?;
        if wait > MAX_WAIT {
            return Err(idmesh_api::status::invalid_argument(format!(
                "wait_millis must be at most {}",
                MAX_WAIT.as_millis()
            )));
        }
        let until = tokio::time::Instant::now() + wait;
        loop {
            // Listen before looking, so a commit between the two still wakes us.
            let written = self.outbox.written.notified();
            tokio::pin!(written);
            written.as_mut().enable();
            let events = self
                .outbox
                .pull(&self.db, limit)
                .await
                .map_err(|err| self.status(&err))?;
            let now = tokio::time::Instant::now();
            if !events.is_empty() || now >= until {
                return Ok(Response::new(PullOutboxResponse { events }));
            }
            let nap = (until - now).min(POLL_INTERVAL);
            tokio::select! {
                () = written => {}
                () = tokio::time::sleep(nap) => {}
            }
        }
    }

    async fn ack_outbox(&self, request: Request<AckOutboxRequest>) -> Result<Response<AckOutboxResponse>, Status> {
        let ids = request.into_inner().outbox_ids;
        if ids.len() > MAX_BATCH {
            return Err(idmesh_api::status::invalid_argument(format!(
                "at most {MAX_BATCH} outbox ids per ack, not {}",
                ids.len()
            )));
        }
        if !ids.is_empty() {
            self.outbox.ack(&self.db, &ids).await.map_err(|err| self.status(&err))?;
        }
        Ok(Response::new(AckOutboxResponse {}))
    }
}
