//! Webhooks end to end, on PostgreSQL and SQLite: users and groups written
//! through SCIM at the gateway, their events delivered by events-service
//! over real HTTP to a receiver in the test, which checks each signature
//! and answers as a test scripts it (failures, `Retry-After`, 410).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit as _, Mac as _};
use idmesh::Target;
use idmesh_proto::v1::webhook_service_client::WebhookServiceClient;
use idmesh_proto::v1::{
    CreateWebhookRequest, DeleteWebhookRequest, DeliveryAttempt, EventType, ListDeliveryAttemptsRequest,
    ListWebhooksRequest, ReplayWebhookRequest, RotateWebhookSecretRequest, Webhook,
};
use idmesh_tests::{ScratchDatabase, TestMesh, both_backends};
use serde_json::Value;
use sha2::Sha256;
use tonic::Code;

/// How long a test waits for deliveries.
const SETTLE: Duration = Duration::from_secs(20);

/// One POST the receiver got.
#[derive(Debug, Clone)]
struct Delivery {
    id: String,
    timestamp: i64,
    /// The `v1,…` signatures of the `webhook-signature` header.
    signatures: Vec<String>,
    body: String,
    at: Instant,
}

impl Delivery {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("the body is JSON")
    }

    fn sequence(&self) -> i64 {
        self.json()["data"]["sequence"].as_i64().expect("a sequence number")
    }

    /// The userName of the user the event is about.
    fn user_name(&self) -> String {
        self.json()["data"]["resource"]["userName"]
            .as_str()
            .expect("a userName")
            .to_owned()
    }

    fn event_type(&self) -> String {
        self.json()["type"].as_str().expect("a type").to_owned()
    }

    /// Whether one of its signatures is `secret`'s, computed here from the
    /// Standard Webhooks definition.
    fn signed_with(&self, secret: &str) -> bool {
        let key = STANDARD
            .decode(secret.strip_prefix("whsec_").expect("a whsec_ secret"))
            .expect("base64");
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("any key length");
        mac.update(format!("{}.{}.{}", self.id, self.timestamp, self.body).as_bytes());
        let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
        self.signatures.contains(&expected)
    }
}

/// How the receiver answers: a status and an optional `Retry-After`.
type Answer = (StatusCode, Option<&'static str>);

#[derive(Debug, Default)]
struct Received {
    deliveries: Vec<Delivery>,
    /// Answers for the next requests, in order; 200 once they run out.
    script: VecDeque<Answer>,
    /// How long each answer takes.
    delay: Duration,
    /// Requests being answered now, and the most there ever were.
    in_flight: usize,
    most_in_flight: usize,
}

/// An HTTP endpoint on an ephemeral port that records every delivery.
#[derive(Debug, Clone)]
struct Receiver {
    url: String,
    state: Arc<Mutex<Received>>,
}

async fn receive(
    State(state): State<Arc<Mutex<Received>>>,
    headers: HeaderMap,
    body: String,
) -> axum::response::Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let delay = {
        let mut state = state.lock().expect("not poisoned");
        state.in_flight += 1;
        state.most_in_flight = state.most_in_flight.max(state.in_flight);
        state.delay
    };
    tokio::time::sleep(delay).await;
    let delivery = Delivery {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp").parse().unwrap_or_default(),
        signatures: header("webhook-signature").split(' ').map(str::to_owned).collect(),
        body,
        at: Instant::now(),
    };
    let mut state = state.lock().expect("not poisoned");
    state.in_flight -= 1;
    state.deliveries.push(delivery);
    let (status, retry_after) = state.script.pop_front().unwrap_or((StatusCode::OK, None));
    let mut response = axum::response::Response::new(axum::body::Body::empty());
    *response.status_mut() = status;
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert("retry-after", seconds.parse().expect("a header value"));
    }
    response
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let addr: SocketAddr = listener.local_addr().expect("an address");
        let state = Arc::new(Mutex::new(Received::default()));
        let app = axum::Router::new()
            .route("/hook", post(receive))
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver {
            url: format!("http://{addr}/hook"),
            state,
        }
    }

    fn script(&self, answers: &[Answer]) {
        self.state
            .lock()
            .expect("not poisoned")
            .script
            .extend(answers.iter().copied());
    }

    fn answer_after(&self, delay: Duration) {
        self.state.lock().expect("not poisoned").delay = delay;
    }

    fn most_in_flight(&self) -> usize {
        self.state.lock().expect("not poisoned").most_in_flight
    }

    fn deliveries(&self) -> Vec<Delivery> {
        self.state.lock().expect("not poisoned").deliveries.clone()
    }

    /// Waits until `done` holds of the deliveries so far, and returns them.
    async fn until(&self, what: &str, done: impl Fn(&[Delivery]) -> bool) -> Vec<Delivery> {
        let deadline = Instant::now() + SETTLE;
        loop {
            let deliveries = self.deliveries();
            if done(&deliveries) {
                return deliveries;
            }
            let summary: Vec<(i64, String)> = deliveries.iter().map(|d| (d.sequence(), d.event_type())).collect();
            assert!(Instant::now() < deadline, "{what}: only {summary:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn create(mesh: &TestMesh, directory_id: &str, url: &str, types: &[EventType]) -> (Webhook, String) {
    let created = mesh
        .webhooks()
        .create_webhook(CreateWebhookRequest {
            directory_id: directory_id.to_owned(),
            url: url.to_owned(),
            types: types.iter().map(|t| i32::from(*t)).collect(),
            description: "test".to_owned(),
        })
        .await
        .expect("CreateWebhook")
        .into_inner();
    (created.webhook.expect("the webhook"), created.secret)
}

/// Waits until the endpoint is disabled, and returns it.
async fn until_disabled(mesh: &TestMesh, id: &str) -> Webhook {
    let deadline = Instant::now() + SETTLE;
    loop {
        let shown = listed(mesh, id).await;
        if !shown.disabled_reason.is_empty() {
            return shown;
        }
        assert!(Instant::now() < deadline, "still enabled: {shown:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the endpoint's newest attempts (up to 100, newest first)
/// are `what`, and returns them. A receiver sees a request before
/// events-service records its outcome.
async fn until_attempts(
    mesh: &TestMesh,
    id: &str,
    what: &str,
    done: impl Fn(&[DeliveryAttempt]) -> bool,
) -> Vec<DeliveryAttempt> {
    let deadline = Instant::now() + SETTLE;
    loop {
        let attempts = mesh
            .webhooks()
            .list_delivery_attempts(ListDeliveryAttemptsRequest {
                webhook_id: id.to_owned(),
                ..Default::default()
            })
            .await
            .expect("ListDeliveryAttempts")
            .into_inner()
            .attempts;
        if done(&attempts) {
            return attempts;
        }
        assert!(Instant::now() < deadline, "not {what}: {attempts:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn listed(mesh: &TestMesh, id: &str) -> Webhook {
    mesh.webhooks()
        .list_webhooks(ListWebhooksRequest::default())
        .await
        .expect("ListWebhooks")
        .into_inner()
        .webhooks
        .into_iter()
        .find(|w| w.id == id)
        .expect("listed")
}

both_backends!(
    an_endpoint_receives_its_directorys_events_signed_in_sequence_order_from_its_creation_on,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let other = mesh.new_directory().await;
        let receiver = Receiver::start().await;
        let everything = Receiver::start().await;
        // Logged before the endpoint exists: not delivered to it.
        scim.create_user("before@example.com").await;
        mesh.until_logged(&scim.directory_id, 2).await;
        let (webhook, secret) = create(&mesh, &scim.directory_id, &receiver.url, &[]).await;
        let (_, all_secret) = create(&mesh, "", &everything.url, &[EventType::UserCreated]).await;

        let alice = scim.create_user("alice@example.com").await;
        let alice_id = alice["id"].as_str().expect("an id").to_owned();
        scim.create_group("Engineering", &[&alice_id]).await;
        other.create_user("bob@example.com").await;

        // user.created, group.created, member.added.
        let deliveries = receiver.until("three events", |d| d.len() >= 3).await;
        let types: Vec<String> = deliveries.iter().map(Delivery::event_type).collect();
        assert_eq!(types, ["user.created", "group.created", "member.added"]);
        let sequences: Vec<i64> = deliveries.iter().map(Delivery::sequence).collect();
        let first = sequences[0];
        assert_eq!(sequences, [first, first + 1, first + 2], "in order, none skipped");
        for delivery in &deliveries {
            assert!(delivery.signed_with(&secret), "{delivery:?}");
            assert_eq!(delivery.signatures.len(), 1);
            let body = delivery.json();
            assert_eq!(body["data"]["id"], delivery.id.as_str(), "webhook-id is the event's id");
            assert_eq!(body["data"]["directory_id"], scim.directory_id.as_str());
            assert!(body["timestamp"].is_string());
            let age = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("after 1970")
                .as_secs()
                .abs_diff(delivery.timestamp.unsigned_abs());
            assert!(age < 60, "webhook-timestamp is the attempt's time");
        }
        assert_eq!(deliveries[0].user_name(), "alice@example.com");

        // The endpoint of every directory got only user.created, of both.
        let names = everything
            .until("two user.created", |d| d.len() >= 2)
            .await
            .iter()
            .map(|d| {
                assert!(d.signed_with(&all_secret));
                assert_eq!(d.event_type(), "user.created");
                d.user_name()
            })
            .collect::<Vec<_>>();
        assert_eq!(names.len(), 2);
        assert!(names.contains(&"alice@example.com".to_owned()) && names.contains(&"bob@example.com".to_owned()));

        // Progress and attempts are listed.
        until_attempts(&mesh, &webhook.id, "three attempts", |a| a.len() >= 3).await;
        let shown = listed(&mesh, &webhook.id).await;
        assert!(shown.disabled_reason.is_empty());
        let progress = &shown.progress[0];
        assert_eq!(progress.directory_id, scim.directory_id);
        assert_eq!(progress.delivered_through, first + 2);
        let attempts = mesh
            .webhooks()
            .list_delivery_attempts(ListDeliveryAttemptsRequest {
                webhook_id: webhook.id.clone(),
                page_size: 2,
                ..Default::default()
            })
            .await
            .expect("ListDeliveryAttempts")
            .into_inner();
        let newest: Vec<(i64, i32, i32)> = attempts
            .attempts
            .iter()
            .map(|a| (a.sequence, a.status_code, a.attempt))
            .collect();
        assert_eq!(newest, [(first + 2, 200, 1), (first + 1, 200, 1)]);
        assert!(!attempts.next_page_token.is_empty());
        let rest = mesh
            .webhooks()
            .list_delivery_attempts(ListDeliveryAttemptsRequest {
                webhook_id: webhook.id.clone(),
                page_size: 2,
                page_token: attempts.next_page_token,
            })
            .await
            .expect("the next page")
            .into_inner();
        assert_eq!(rest.attempts.len(), 1);
        assert_eq!(rest.attempts[0].sequence, first);
        assert!(rest.next_page_token.is_empty());
    }
);

both_backends!(
    a_failing_endpoint_holds_the_next_event_back_honours_retry_after_and_is_disabled_by_410_until_replayed,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let receiver = Receiver::start().await;
        let (webhook, _) = create(&mesh, &scim.directory_id, &receiver.url, &[EventType::UserCreated]).await;
        receiver.script(&[
            (StatusCode::SERVICE_UNAVAILABLE, Some("2")),
            (StatusCode::INTERNAL_SERVER_ERROR, None),
        ]);
        scim.create_user("one@example.com").await;
        scim.create_user("two@example.com").await;

        let deliveries = receiver.until("one, one, one, two", |d| d.len() >= 4).await;
        let order: Vec<String> = deliveries.iter().map(Delivery::user_name).collect();
        assert_eq!(
            order,
            [
                "one@example.com",
                "one@example.com",
                "one@example.com",
                "two@example.com"
            ],
            "the next event waits for the previous one's 2xx"
        );
        assert!(
            deliveries[..3].iter().all(|d| d.id == deliveries[0].id),
            "a retry keeps its webhook-id"
        );
        let waited = deliveries[1].at - deliveries[0].at;
        assert!(
            waited >= Duration::from_millis(1900),
            "Retry-After: 2 was honoured: {waited:?}"
        );
        // After a plain 500, the first backoff: 1 to 2 seconds.
        let backoff = deliveries[2].at - deliveries[1].at;
        assert!(backoff >= Duration::from_millis(900), "backed off: {backoff:?}");

        let attempts = until_attempts(&mesh, &webhook.id, "four attempts", |a| a.len() >= 4).await;
        let recorded: Vec<(i32, i32, bool)> = attempts
            .iter()
            .map(|a| (a.status_code, a.attempt, a.error.is_empty()))
            .collect();
        assert_eq!(
            recorded,
            [(200, 1, true), (200, 3, true), (500, 2, false), (503, 1, false)],
            "newest first"
        );

        // A 410 disables the endpoint: nothing more is sent.
        receiver.script(&[(StatusCode::GONE, None)]);
        scim.create_user("three@example.com").await;
        receiver.until("the 410", |d| d.len() >= 5).await;
        let disabled = until_disabled(&mesh, &webhook.id).await;
        assert!(disabled.disabled_reason.contains("410"), "{disabled:?}");
        assert!(disabled.disabled_at.is_some());
        scim.create_user("four@example.com").await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(receiver.deliveries().len(), 5, "a disabled endpoint gets nothing");

        // Replayed from the first user's event: enabled, and everything
        // from there again, in order.
        let from = deliveries[0].sequence();
        mesh.webhooks()
            .replay_webhook(ReplayWebhookRequest {
                id: webhook.id.clone(),
                directory_id: String::new(),
                from_sequence: from,
            })
            .await
            .expect("ReplayWebhook");
        let replayed = receiver.until("the replay", |d| d.len() >= 9).await;
        let names: Vec<String> = replayed[5..].iter().map(Delivery::user_name).collect();
        assert_eq!(
            names,
            [
                "one@example.com",
                "two@example.com",
                "three@example.com",
                "four@example.com"
            ]
        );
        assert!(listed(&mesh, &webhook.id).await.disabled_reason.is_empty());
    }
);

both_backends!(
    a_rotated_secret_signs_beside_the_new_one_until_it_is_retired,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let receiver = Receiver::start().await;
        let (webhook, old) = create(&mesh, &scim.directory_id, &receiver.url, &[EventType::UserCreated]).await;
        let rotate = |previous_valid_seconds| {
            let mut webhooks = mesh.webhooks();
            let id = webhook.id.clone();
            async move {
                webhooks
                    .rotate_webhook_secret(RotateWebhookSecretRequest {
                        id,
                        previous_valid_seconds,
                    })
                    .await
                    .map(tonic::Response::into_inner)
            }
        };
        let rotated = rotate(3600).await.expect("RotateWebhookSecret");
        let new = rotated.secret;
        assert_ne!(new, old);
        assert!(rotated.webhook.expect("the webhook").previous_secret_expires.is_some());
        scim.create_user("during@example.com").await;
        let first = receiver.until("one delivery", |d| !d.is_empty()).await;
        assert_eq!(first[0].signatures.len(), 2);
        assert!(first[0].signed_with(&old) && first[0].signed_with(&new));

        let newest = rotate(0).await.expect("RotateWebhookSecret").secret;
        scim.create_user("after@example.com").await;
        let second = receiver.until("two deliveries", |d| d.len() >= 2).await;
        assert_eq!(second[1].signatures.len(), 1);
        assert!(second[1].signed_with(&newest) && !second[1].signed_with(&new));

        let bad = rotate(7 * 24 * 3600 + 1).await.expect_err("longer than seven days");
        assert_eq!(bad.code(), Code::InvalidArgument);
    }
);

/// A mesh whose webhooks give up after 2 seconds of failing.
async fn start_with_short_retry_window(database: &ScratchDatabase) -> TestMesh {
    TestMesh::start_with(database, &Target::ALL, |config| {
        config.webhook_retry_window = Duration::from_secs(2);
    })
    .await
}

both_backends!(
    an_endpoint_failing_for_the_whole_retry_window_is_disabled,
    start_with_short_retry_window,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let receiver = Receiver::start().await;
        let (webhook, _) = create(&mesh, &scim.directory_id, &receiver.url, &[]).await;
        receiver.script(&[(StatusCode::BAD_GATEWAY, None); 20]);
        scim.create_user("unlucky@example.com").await;
        let disabled = until_disabled(&mesh, &webhook.id).await;
        assert!(disabled.disabled_reason.contains("retry window"), "{disabled:?}");
        assert!(disabled.disabled_reason.contains("502"), "{disabled:?}");
        let tries = receiver.deliveries().len();
        assert!(tries >= 2, "retried before giving up: {tries}");
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(receiver.deliveries().len(), tries, "nothing after disabling");
    }
);

both_backends!(
    bad_registrations_and_replays_are_refused_with_the_reason,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let mut webhooks = mesh.webhooks();
        for url in ["ftp://example.com/", "not a url", "https://user:secret@example.com/"] {
            let status = webhooks
                .create_webhook(CreateWebhookRequest {
                    directory_id: scim.directory_id.clone(),
                    url: url.to_owned(),
                    ..Default::default()
                })
                .await
                .expect_err(url);
            assert_eq!(status.code(), Code::InvalidArgument, "{url}: {status:?}");
        }
        let status = webhooks
            .create_webhook(CreateWebhookRequest {
                directory_id: scim.directory_id.clone(),
                url: "https://example.com/".to_owned(),
                types: vec![99],
                ..Default::default()
            })
            .await
            .expect_err("an unknown type");
        assert_eq!(status.code(), Code::InvalidArgument);

        let (every, _) = create(&mesh, "", "https://example.com/every", &[]).await;
        let replay = |id: &str, directory_id: &str, from_sequence| ReplayWebhookRequest {
            id: id.to_owned(),
            directory_id: directory_id.to_owned(),
            from_sequence,
        };
        let status = webhooks
            .replay_webhook(replay(&every.id, "", 1))
            .await
            .expect_err("which directory?");
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains("name the directory"), "{status:?}");
        let (own, _) = create(&mesh, &scim.directory_id, "https://example.com/own", &[]).await;
        for (request, why) in [
            (replay(&own.id, "another", 1), "another directory"),
            (replay(&own.id, "", 0), "sequence 0"),
            (replay(&own.id, "", 1_000_000), "past the log's end"),
        ] {
            let status = webhooks.replay_webhook(request).await.expect_err(why);
            assert_eq!(status.code(), Code::InvalidArgument, "{why}: {status:?}");
        }

        webhooks
            .delete_webhook(DeleteWebhookRequest { id: own.id.clone() })
            .await
            .expect("DeleteWebhook");
        let status = webhooks
            .delete_webhook(DeleteWebhookRequest { id: own.id.clone() })
            .await
            .expect_err("gone");
        assert_eq!(status.code(), Code::NotFound);
        let remaining: Vec<String> = webhooks
            .list_webhooks(ListWebhooksRequest::default())
            .await
            .expect("ListWebhooks")
            .into_inner()
            .webhooks
            .into_iter()
            .map(|w| w.id)
            .collect();
        assert_eq!(remaining, [every.id]);
    }
);

both_backends!(
    two_events_service_replicas_deliver_an_endpoint_one_event_at_a_time_in_order_each_once,
    TestMesh::with_database_url,
    |(mesh, database_url): (TestMesh, String)| async move {
        // A second events-service on the same database: it drains, logs
        // and delivers too.
        let replica = mesh.start_events_service(&database_url).await;

        let scim = mesh.new_directory().await;
        let receiver = Receiver::start().await;
        // Slow answers widen the window in which a second sender would
        // overlap the first.
        receiver.answer_after(Duration::from_millis(20));
        create(&mesh, &scim.directory_id, &receiver.url, &[EventType::UserCreated]).await;
        let writers = (0..4).map(|writer| {
            let scim = scim.clone();
            tokio::spawn(async move {
                for n in 0..10 {
                    scim.create_user(&format!("replica-{writer}-{n}@example.com")).await;
                }
            })
        });
        for writer in writers.collect::<Vec<_>>() {
            writer.await.expect("the writer finishes");
        }
        let deliveries = receiver.until("40 users", |d| d.len() >= 40).await;
        let sequences: Vec<i64> = deliveries.iter().map(Delivery::sequence).collect();
        assert!(
            sequences.windows(2).all(|w| w[0] < w[1]),
            "in order, each once: {sequences:?}"
        );
        assert_eq!(receiver.most_in_flight(), 1, "one event at a time across both replicas");
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(receiver.deliveries().len(), 40, "nothing sent twice afterwards");
        replica.stop().await;
    }
);

both_backends!(
    a_stopping_events_service_hands_its_deliveries_over_at_once,
    TestMesh::without_events_service,
    |(mesh, database_url): (TestMesh, String)| async move {
        let first = mesh.start_events_service(&database_url).await;
        let scim = mesh.new_directory().await;
        let receiver = Receiver::start().await;
        receiver.answer_after(Duration::from_millis(300));
        let mut webhooks = WebhookServiceClient::new(mesh.channel_as(first.addr, &mesh.admin_key));
        webhooks
            .create_webhook(CreateWebhookRequest {
                directory_id: scim.directory_id.clone(),
                url: receiver.url.clone(),
                types: vec![EventType::UserCreated.into()],
                description: String::new(),
            })
            .await
            .expect("CreateWebhook");
        for n in 0..10 {
            scim.create_user(&format!("handed-over-{n}@example.com")).await;
        }
        receiver.until("the first deliveries", |d| d.len() >= 2).await;

        // Stopped mid-delivery, it gives the cursor back: the next
        // events-service goes on at once, not after the 60 s lease.
        first.stop().await;
        let second = mesh.start_events_service(&database_url).await;
        let deliveries = receiver
            .until("all ten, well within the lease", |d| {
                d.iter().map(|d| &d.id).collect::<std::collections::HashSet<_>>().len() >= 10
            })
            .await;
        // The event being sent when the first stopped may come twice.
        let mut sequences: Vec<i64> = deliveries.iter().map(Delivery::sequence).collect();
        sequences.dedup();
        assert!(sequences.windows(2).all(|w| w[0] < w[1]), "in order: {sequences:?}");
        second.stop().await;
    }
);

/// A mesh that delivers only to public addresses, as `idmesh serve` does
/// by default.
async fn start_public_only(database: &ScratchDatabase) -> TestMesh {
    TestMesh::start_with(database, &Target::ALL, |config| {
        config.webhook_allow_private_networks = false;
    })
    .await
}

both_backends!(
    without_private_networks_no_delivery_reaches_a_private_address,
    start_public_only,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let receiver = Receiver::start().await;
        let status = mesh
            .webhooks()
            .create_webhook(CreateWebhookRequest {
                directory_id: scim.directory_id.clone(),
                url: receiver.url.clone(),
                ..Default::default()
            })
            .await
            .expect_err("an address on loopback");
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains("not a public address"), "{status:?}");

        // A name is checked when deliveries connect: localhost resolves to
        // loopback only.
        let by_name = receiver.url.replace("127.0.0.1", "localhost");
        let (webhook, _) = create(&mesh, &scim.directory_id, &by_name, &[EventType::UserCreated]).await;
        scim.create_user("kept-inside@example.com").await;
        let attempt = until_attempts(&mesh, &webhook.id, "an attempt", |a| !a.is_empty())
            .await
            .remove(0);
        assert_eq!(attempt.status_code, 0);
        assert!(attempt.error.contains("not public"), "{attempt:?}");
        assert!(receiver.deliveries().is_empty(), "nothing reached the endpoint");
    }
);

/// A mesh that keeps events (and delivery attempts) for one second.
async fn start_with_short_retention(database: &ScratchDatabase) -> TestMesh {
    TestMesh::start_with(database, &Target::ALL, |config| {
        config.event_retention = Duration::from_secs(1);
    })
    .await
}

both_backends!(
    an_endpoint_that_retention_overtook_is_disabled_and_its_attempts_expire_with_the_events,
    start_with_short_retention,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let receiver = Receiver::start().await;
        let (webhook, _) = create(&mesh, &scim.directory_id, &receiver.url, &[]).await;
        // Failing until the event is older than retention: 1–2 s until the
        // second attempt, by which time retention has removed the event.
        receiver.script(&[(StatusCode::INTERNAL_SERVER_ERROR, None); 20]);
        scim.create_user("overtaken@example.com").await;
        let disabled = until_disabled(&mesh, &webhook.id).await;
        assert!(disabled.disabled_reason.contains("retention removed"), "{disabled:?}");
        until_attempts(&mesh, &webhook.id, "expired with the events", <[_]>::is_empty).await;
    }
);

both_backends!(
    a_replay_during_a_delivery_takes_over_after_it_never_beside_it,
    TestMesh::with_database_url,
    |(mesh, database_url): (TestMesh, String)| async move {
        // Two replicas: the one not delivering must not start the replay
        // while the other still sends.
        let replica = mesh.start_events_service(&database_url).await;
        let scim = mesh.new_directory().await;
        let receiver = Receiver::start().await;
        receiver.answer_after(Duration::from_millis(100));
        let (webhook, _) = create(&mesh, &scim.directory_id, &receiver.url, &[EventType::UserCreated]).await;
        for n in 0..20 {
            scim.create_user(&format!("replayed-{n:02}@example.com")).await;
        }
        let before = receiver.until("a delivery under way", |d| d.len() >= 3).await;
        let first = before[0].sequence();
        mesh.webhooks()
            .replay_webhook(ReplayWebhookRequest {
                id: webhook.id.clone(),
                directory_id: String::new(),
                from_sequence: first,
            })
            .await
            .expect("ReplayWebhook");
        // The delivery under way stops within its flush (5 s at most);
        // then the replay sends all twenty again, from the first.
        let deliveries = receiver
            .until("the replay to the end", |d| {
                d.iter()
                    .rposition(|d| d.sequence() == first)
                    .is_some_and(|restart| restart > 0 && d.len() - restart >= 20)
            })
            .await;
        assert_eq!(receiver.most_in_flight(), 1, "never two deliveries at once");
        let restart = deliveries
            .iter()
            .rposition(|d| d.sequence() == first)
            .expect("the replay began");
        let replayed: Vec<String> = deliveries[restart..].iter().take(20).map(Delivery::user_name).collect();
        let expected: Vec<String> = (0..20).map(|n| format!("replayed-{n:02}@example.com")).collect();
        assert_eq!(replayed, expected, "from the replay's start, in order");
        // Before the replay took over, the first delivery went on in order.
        let sequences: Vec<i64> = deliveries[..restart].iter().map(Delivery::sequence).collect();
        assert!(sequences.windows(2).all(|w| w[0] < w[1]), "{sequences:?}");
        replica.stop().await;
    }
);
