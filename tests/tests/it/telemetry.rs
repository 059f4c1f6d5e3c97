//! Telemetry across the mesh: one SCIM request is one trace, from the
//! gateway through every gRPC hop down to the database statements, and it
//! continues the trace of the `traceparent` the caller sent; a revocation
//! delivered later from the outbox joins it too. Probes are not traced.
//!
//! The test subscriber keeps in memory the spans of traces that their first
//! caller sampled (see `idmesh_testkit::init_telemetry`), so each test
//! sends a sampled `traceparent` of a fresh trace and reads back only the
//! spans of that trace, whatever else runs in the process.

use std::collections::HashMap;
use std::time::Duration;

use idmesh::{MeshConfig, Target};
use idmesh_tests::idmesh_testkit::{SpanData, finished_spans, unused_addr};
use idmesh_tests::{Backend, ScratchDatabase, TestMesh, both_backends, patch_op};
use reqwest::Method;
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// A sampled W3C `traceparent` of a fresh trace: (header, trace id, the
/// caller's span id).
fn sampled_traceparent() -> (String, String, String) {
    let trace_id = uuid::Uuid::new_v4().simple().to_string();
    let span_id = uuid::Uuid::new_v4().simple().to_string()[..16].to_owned();
    (format!("00-{trace_id}-{span_id}-01"), trace_id, span_id)
}

/// The ended spans of `trace_id`, by span id.
fn spans_of(trace_id: &str) -> HashMap<String, SpanData> {
    finished_spans()
        .into_iter()
        .filter(|span| span.span_context.trace_id().to_string() == trace_id)
        .map(|span| (span.span_context.span_id().to_string(), span))
        .collect()
}

/// The first span of `spans` named `name`.
fn named<'a>(spans: &'a HashMap<String, SpanData>, name: &str) -> Option<&'a SpanData> {
    spans.values().find(|span| span.name == name)
}

/// Whether `ancestor` is `span`'s parent, or its parent's, and so on.
fn descends_from(spans: &HashMap<String, SpanData>, span: &SpanData, ancestor: &SpanData) -> bool {
    let mut parent = span.parent_span_id.to_string();
    while let Some(next) = spans.get(&parent) {
        if next.span_context.span_id() == ancestor.span_context.span_id() {
            return true;
        }
        parent = next.parent_span_id.to_string();
    }
    false
}

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|attribute| attribute.key.as_str() == key)
        .map(|attribute| attribute.value.as_str().into_owned())
}

/// The spans of `trace_id` once one is named `name`, waiting up to
/// `patience` for it: a server's span ends as its response goes out, a
/// moment after the caller may have read it.
async fn spans_once_there(trace_id: &str, name: &str, patience: Duration) -> HashMap<String, SpanData> {
    let started = std::time::Instant::now();
    loop {
        let spans = spans_of(trace_id);
        if named(&spans, name).is_some() || started.elapsed() > patience {
            return spans;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const GATEWAY_SPAN: &str = "PATCH /scim/v2/{directory_id}/Users/{id}";
const USER_SERVICE_SPAN: &str = "idmesh.v1.UserService/PatchUser";
const SESSION_SERVICE_SPAN: &str = "idmesh.v1.SessionService/RevokeUserSessions";

both_backends!(
    deactivating_a_user_is_one_trace_from_the_gateway_to_session_service,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let id = scim.create_user("traced@example.com").await["id"]
            .as_str()
            .expect("an id")
            .to_owned();
        let (traceparent, trace_id, caller_span_id) = sampled_traceparent();
        scim.send_with_headers(
            Method::PATCH,
            &format!("/Users/{id}"),
            &[("traceparent", &traceparent)],
            Some(patch_op(json!([{"op": "replace", "path": "active", "value": false}]))),
            200,
        )
        .await;

        // A server's span ends as its response goes out, a moment after
        // the caller may have read it.
        let mut spans = spans_of(&trace_id);
        for _ in 0..50 {
            if [GATEWAY_SPAN, USER_SERVICE_SPAN, SESSION_SERVICE_SPAN]
                .iter()
                .all(|name| named(&spans, name).is_some())
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            spans = spans_of(&trace_id);
        }
        let names: Vec<&str> = spans.values().map(|span| span.name.as_ref()).collect();
        let gateway = named(&spans, GATEWAY_SPAN).unwrap_or_else(|| panic!("a gateway span in {names:?}"));
        assert_eq!(
            gateway.parent_span_id.to_string(),
            caller_span_id,
            "the gateway continues the caller's trace"
        );
        assert_eq!(
            attribute(gateway, "http.route").as_deref(),
            Some("/scim/v2/{directory_id}/Users/{id}")
        );
        let user_service =
            named(&spans, USER_SERVICE_SPAN).unwrap_or_else(|| panic!("a user-service span in {names:?}"));
        assert!(
            descends_from(&spans, user_service, gateway),
            "user-service's span is beneath the gateway's"
        );
        let session_service =
            named(&spans, SESSION_SERVICE_SPAN).unwrap_or_else(|| panic!("a session-service span in {names:?}"));
        assert!(
            descends_from(&spans, session_service, user_service),
            "session-service's span is beneath user-service's"
        );
        let statements: Vec<&SpanData> = spans
            .values()
            .filter(|span| attribute(span, "db.system").is_some() && descends_from(&spans, span, user_service))
            .collect();
        assert!(
            statements
                .iter()
                .any(|span| attribute(span, "db.operation").as_deref() == Some("UPDATE")),
            "user-service's UPDATE of the user is a span beneath its call: {names:?}"
        );
        assert!(
            statements
                .iter()
                .any(|span| attribute(span, "db.operation").as_deref() == Some("SELECT")),
            "user-service's read of the user, which bypasses sea-orm, is a span beneath its call too: {names:?}"
        );
    }
);

both_backends!(probes_are_not_traced, |mesh: TestMesh| async move {
    let (traceparent, trace_id, _) = sampled_traceparent();
    let http = reqwest::Client::new();
    for probe in ["healthz", "readyz"] {
        // /readyz may say 503 until a health check of directory-service
        // gets through.
        let mut status = 0;
        for _ in 0..50 {
            status = http
                .get(format!("http://{}/{probe}", mesh.http_addr))
                .header("traceparent", &traceparent)
                .send()
                .await
                .expect("the gateway answers")
                .status()
                .as_u16();
            if status == 200 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(status, 200, "/{probe}");
    }
    // A SCIM request of the same trace afterwards: once its span is there,
    // the probes' would be too.
    let scim = mesh.new_directory().await;
    scim.send_with_headers(Method::GET, "/Users", &[("traceparent", &traceparent)], None, 200)
        .await;
    let spans = spans_once_there(&trace_id, "GET /scim/v2/{directory_id}/Users", Duration::from_secs(5)).await;
    let names: Vec<&str> = spans.values().map(|span| span.name.as_ref()).collect();
    assert!(names.contains(&"GET /scim/v2/{directory_id}/Users"), "{names:?}");
    assert!(
        names
            .iter()
            .all(|name| !name.contains("healthz") && !name.contains("readyz") && !name.contains("grpc.health")),
        "{names:?}"
    );
});

#[tokio::test]
async fn a_revocation_delivered_later_joins_the_trace_of_the_request_that_stored_it() {
    let session_addr = unused_addr();
    let database = ScratchDatabase::new(Backend::Sqlite);
    let mesh = TestMesh::start_with(
        &database,
        &[Target::Directories, Target::Users, Target::Groups, Target::Gateway],
        |config| config.session_addr = session_addr.to_string(),
    )
    .await;
    let scim = mesh.new_directory().await;
    let id = scim.create_user("later@example.com").await["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let (traceparent, trace_id, _) = sampled_traceparent();
    scim.send_with_headers(
        Method::PATCH,
        &format!("/Users/{id}"),
        &[("traceparent", &traceparent)],
        Some(patch_op(json!([{"op": "replace", "path": "active", "value": false}]))),
        200,
    )
    .await;

    // session-service comes up after the request: the outbox retries.
    let mut config = MeshConfig::loopback(String::new());
    config.session_listen_addr = session_addr;
    config.directory_addr = mesh.directory_addr.to_string();
    config.api_key = Some(mesh.admin_key.clone());
    let shutdown = CancellationToken::new();
    let _stop_sessions = shutdown.clone().drop_guard();
    let session_service = idmesh::launch(&[Target::Sessions], config, shutdown)
        .await
        .expect("session-service starts");
    tokio::spawn(session_service.wait());

    // The retry's span ends last, after session-service's.
    let spans = spans_once_there(&trace_id, "session revocation retry", Duration::from_secs(30)).await;
    let names: Vec<&str> = spans.values().map(|span| span.name.as_ref()).collect();
    let retry = named(&spans, "session revocation retry")
        .unwrap_or_else(|| panic!("the outbox's retry is in the request's trace: {names:?}"));
    let delivered = named(&spans, SESSION_SERVICE_SPAN)
        .unwrap_or_else(|| panic!("session-service's span is in the request's trace: {names:?}"));
    assert!(descends_from(&spans, delivered, retry), "{names:?}");
    assert_eq!(attribute(delivered, "rpc.grpc.status_code").as_deref(), Some("0"));
}
