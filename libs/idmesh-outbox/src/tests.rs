//! The outbox on both databases: what a transaction records exists exactly
//! when the transaction commits, pulls answer oldest first, acks delete,
//! and a waiting pull wakes when a write commits.

use std::time::Duration;

use idmesh_proto::v1::outbox_service_server::OutboxService;
use idmesh_proto::v1::{AckOutboxRequest, Event, EventType, PullOutboxRequest};
use idmesh_testkit::{ScratchDatabase, on_both_backends};
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};
use tonic::Request;

use super::*;

const TABLE: &str = "test_event_outbox";

async fn outbox_on(scratch: &ScratchDatabase) -> (DatabaseConnection, Outbox) {
    let db = idmesh_store::connect(scratch.url()).await.expect("connect");
    db.execute(&Outbox::create_table(TABLE))
        .await
        .expect("create the outbox table");
    (db, Outbox::new(TABLE))
}

fn created(resource_id: &str) -> Event {
    Event {
        directory_id: "d1".into(),
        r#type: EventType::UserCreated.into(),
        resource_type: "User".into(),
        resource_id: resource_id.into(),
        version: 1,
        ..Event::default()
    }
}

async fn pull(api: &OutboxApi, wait_millis: i32) -> Vec<OutboxEvent> {
    api.pull_outbox(Request::new(PullOutboxRequest { limit: 0, wait_millis }))
        .await
        .expect("pull")
        .into_inner()
        .events
}

on_both_backends!(
    recorded_events_exist_exactly_when_their_transaction_commits,
    outbox_on,
    |(db, outbox): (DatabaseConnection, Outbox)| async move {
        let api = OutboxApi::new(db.clone(), outbox.clone(), "test");

        let txn = db.begin().await.expect("begin");
        outbox.record(&txn, vec![created("rolled-back")]).await.expect("record");
        txn.rollback().await.expect("rollback");
        assert!(pull(&api, 0).await.is_empty(), "a rolled-back write left an event");

        // More than one INSERT's worth, so the chunks keep their order.
        let txn = db.begin().await.expect("begin");
        let events: Vec<Event> = (0..1_203).map(|n| created(&format!("u{n:04}"))).collect();
        outbox.record(&txn, events).await.expect("record");
        txn.commit().await.expect("commit");

        let first = pull(&api, 0).await;
        assert_eq!(first.len(), MAX_BATCH);
        let resources: Vec<&str> = first
            .iter()
            .map(|e| e.event.as_ref().expect("an event").resource_id.as_str())
            .collect();
        let expected: Vec<String> = (0..1_000).map(|n| format!("u{n:04}")).collect();
        assert_eq!(resources, expected, "pulled out of the order they were written");
        let ids: std::collections::HashSet<&str> = first
            .iter()
            .map(|e| e.event.as_ref().expect("an event").id.as_str())
            .collect();
        assert_eq!(ids.len(), MAX_BATCH, "every event gets an id of its own");

        let acked: Vec<i64> = first.iter().map(|e| e.outbox_id).collect();
        api.ack_outbox(Request::new(AckOutboxRequest { outbox_ids: acked }))
            .await
            .expect("ack");
        let rest = pull(&api, 0).await;
        assert_eq!(rest.len(), 203);
        assert_eq!(
            rest[0].event.as_ref().expect("an event").resource_id,
            "u1000",
            "an acked event came back"
        );
    }
);

on_both_backends!(
    a_waiting_pull_wakes_when_a_write_commits,
    outbox_on,
    |(db, outbox): (DatabaseConnection, Outbox)| async move {
        let api = OutboxApi::new(db.clone(), outbox.clone(), "test");
        let waiting = tokio::spawn({
            let api = api.clone();
            async move { pull(&api, 30_000).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        let txn = db.begin().await.expect("begin");
        outbox.record(&txn, vec![created("late")]).await.expect("record");
        txn.commit().await.expect("commit");
        outbox.written();
        let events = tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .expect("the pull woke well before its 30 s wait ran out")
            .expect("the pull task");
        assert_eq!(events.len(), 1);
    }
);

#[tokio::test]
async fn bad_limits_are_invalid_arguments() {
    let scratch = ScratchDatabase::new(idmesh_testkit::Backend::Sqlite);
    let (db, outbox) = outbox_on(&scratch).await;
    let api = OutboxApi::new(db, outbox, "test");
    for (limit, wait_millis) in [(-1, 0), (1_001, 0), (10, -5), (10, 30_001)] {
        let err = api
            .pull_outbox(Request::new(PullOutboxRequest { limit, wait_millis }))
            .await
            .expect_err("refused");
        assert_eq!(
            err.code(),
            tonic::Code::InvalidArgument,
            "limit {limit}, wait {wait_millis}"
        );
    }
    let err = api
        .ack_outbox(Request::new(AckOutboxRequest {
            outbox_ids: (0..1_001).collect(),
        }))
        .await
        .expect_err("refused");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
}
