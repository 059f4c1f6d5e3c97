//! The limits of README's "Limits", through the real gateway: each
//! directory's rate (429 with `Retry-After`, per directory, overridden over
//! gRPC, counted per operation in a bulk request), load shedding and the
//! request deadline (503 with `Retry-After`), and the bounds of one request
//! (413, 400 `invalidSyntax`, 400 `tooMany`). A refused request writes
//! nothing; where that matters the test reads the directory back over gRPC,
//! which the gateway's rate does not count.
//!
//! The meshes here are started with small limits so that the tests are
//! fast; the defaults are in `scim::Limits::DEFAULT` and
//! `scim_gateway::Traffic::DEFAULT`.

use std::num::{NonZeroU32, NonZeroUsize};
use std::time::{Duration, Instant};

use idmesh::{MeshConfig, Target};
use idmesh_proto::v1::{
    CreateUserRequest, GetDirectoryRequest, ListUsersRequest, PageRequest, RateLimit, SetRateLimitRequest,
};
use idmesh_tests::{
    Backend, ScimClient, ScimResponse, ScratchDatabase, TestMesh, both_backends, encode, patch_op, user,
};
use reqwest::Method;
use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// Asserts that `response` is a SCIM error body of its own status, with
/// `scim_type` (RFC 7644 §3.12 gives 429, 413 and 503 none).
fn assert_scim_error(response: &ScimResponse, scim_type: Option<&str>) {
    assert_eq!(response.body["schemas"], json!([ERROR_SCHEMA]), "{:#}", response.body);
    assert_eq!(response.body["status"], json!(response.status.to_string()));
    assert_eq!(response.body.get("scimType").and_then(Value::as_str), scim_type);
    assert_eq!(response.header("content-type"), Some("application/scim+json"));
}

/// The whole seconds of `Retry-After`, which must be there and at least 1.
fn retry_after(response: &ScimResponse) -> u64 {
    let text = response.header("retry-after").expect("a Retry-After header");
    let seconds: u64 = text
        .parse()
        .unwrap_or_else(|_| panic!("Retry-After {text:?} is whole seconds"));
    assert!(seconds >= 1, "Retry-After {seconds}");
    seconds
}

fn non_zero(n: u32) -> NonZeroU32 {
    NonZeroU32::new(n).expect("not zero")
}

/// How long the gateways of [`slow_rate`] trust a resolved token, so how
/// soon a rate set over gRPC applies.
const TOKEN_CACHE_TTL: Duration = Duration::from_millis(500);

/// Each directory gets 1 request a second with bursts of 3 unless it has
/// its own rate.
fn slow_rate(config: &mut MeshConfig) {
    config.traffic.default_rate.per_second = non_zero(1);
    config.traffic.default_rate.burst = non_zero(3);
    config.token_cache_ttl = TOKEN_CACHE_TTL;
}

async fn start_with_slow_rate(database: &ScratchDatabase) -> TestMesh {
    TestMesh::start_with(database, &Target::ALL, slow_rate).await
}

/// [`slow_rate`], and every 1,000 bytes of a body beyond its first count
/// as one request more.
async fn start_with_slow_rate_by_bytes(database: &ScratchDatabase) -> TestMesh {
    TestMesh::start_with(database, &Target::ALL, |config| {
        slow_rate(config);
        config.traffic.bytes_per_request = NonZeroUsize::new(1000).expect("not zero");
    })
    .await
}

/// The userNames stored in `scim`'s directory, read over gRPC.
async fn user_names(mesh: &TestMesh, scim: &ScimClient) -> Vec<String> {
    let mut names: Vec<String> = mesh
        .users()
        .list_users(ListUsersRequest {
            directory_id: scim.directory_id.clone(),
            page: Some(PageRequest {
                count: 100,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("ListUsers")
        .into_inner()
        .users
        .into_iter()
        .map(|user| user.user_name)
        .collect();
    names.sort();
    names
}

/// Sends `GET /Users` until it is answered `wanted` rather than `other`, for
/// at most 5 seconds; returns that answer.
async fn get_users_until(scim: &ScimClient, wanted: u16, other: u16) -> ScimResponse {
    let started = Instant::now();
    loop {
        let response = scim
            .send_expecting_one_of(Method::GET, "/Users", None, &[wanted, other])
            .await;
        if response.status == wanted {
            return response;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still {other} after 5 seconds"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

both_backends!(
    a_directory_over_its_rate_gets_429_and_another_directory_is_not_affected,
    start_with_slow_rate,
    |mesh: TestMesh| async move {
        let busy = mesh.new_directory().await;
        let quiet = mesh.new_directory().await;

        // At 1 a second with bursts of 3, the burst goes through and a
        // request soon after is refused; the bound only keeps a stalled
        // test from running forever.
        let mut created = Vec::new();
        let refused = loop {
            assert!(created.len() < 10, "no 429 after {} requests", created.len());
            let user_name = format!("user{}@example.com", created.len());
            let response = busy
                .send_expecting_one_of(Method::POST, "/Users", Some(user(&user_name)), &[201, 429])
                .await;
            if response.status == 429 {
                break (user_name, response);
            }
            created.push(user_name);
        };
        assert!(created.len() >= 3, "the burst of 3 is admitted: {created:?}");
        let (refused_name, refused) = refused;
        assert_scim_error(&refused, None);
        assert_eq!(retry_after(&refused), 1, "at 1 a second, a token is back within 1 s");
        assert_eq!(user_names(&mesh, &busy).await, created, "{refused_name} is not written");

        // The other directory has a bucket of its own, still full.
        for _ in 0..2 {
            quiet.get("/Users", 200).await;
        }
        quiet.post("/Users", user("quiet@example.com"), 201).await;
        assert_eq!(user_names(&mesh, &quiet).await, ["quiet@example.com"]);
    }
);

both_backends!(
    a_rate_set_over_grpc_applies_to_its_directory_and_clearing_it_restores_the_default,
    start_with_slow_rate,
    |mesh: TestMesh| async move {
        let raised = mesh.new_directory().await;
        let unchanged = mesh.new_directory().await;
        let refused = get_users_until(&raised, 429, 200).await;
        assert_scim_error(&refused, None);

        let directory = mesh
            .directories()
            .set_rate_limit(SetRateLimitRequest {
                directory_id: raised.directory_id.clone(),
                rate_limit: Some(RateLimit {
                    requests_per_second: 1000,
                    burst: 1000,
                }),
            })
            .await
            .expect("SetRateLimit")
            .into_inner();
        let own_rate = Some(RateLimit {
            requests_per_second: 1000,
            burst: 1000,
        });
        assert_eq!(directory.rate_limit, own_rate);
        let stored = mesh
            .directories()
            .get_directory(GetDirectoryRequest {
                id: raised.directory_id.clone(),
            })
            .await
            .expect("GetDirectory")
            .into_inner();
        assert_eq!(stored.rate_limit, own_rate);

        // Once the gateway has resolved the token again, past its cache
        // time, the directory's own burst of 1000 admits far more than the
        // default's 3. (A 200 alone would not tell: the default bucket
        // refills too.)
        tokio::time::sleep(TOKEN_CACHE_TTL + Duration::from_millis(100)).await;
        for _ in 0..20 {
            raised.get("/Users", 200).await;
        }
        // The other directory still has the default.
        get_users_until(&unchanged, 429, 200).await;

        let cleared = mesh
            .directories()
            .set_rate_limit(SetRateLimitRequest {
                directory_id: raised.directory_id.clone(),
                rate_limit: None,
            })
            .await
            .expect("SetRateLimit without a rate")
            .into_inner();
        assert_eq!(cleared.rate_limit, None);
        let refused = get_users_until(&raised, 429, 200).await;
        assert_scim_error(&refused, None);
        retry_after(&refused);
    }
);

both_backends!(
    bulk_operations_beyond_the_rate_answer_429_inside_the_bulk_response,
    start_with_slow_rate,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let operations: Vec<Value> = (0..8)
            .map(|i| {
                json!({
                    "method": "POST",
                    "path": "/Users",
                    "bulkId": format!("u{i}"),
                    "data": user(&format!("bulk{i}@example.com")),
                })
            })
            .collect();
        let body = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
            "Operations": operations,
        });
        let response = scim.post("/Bulk", body, 200).await.body;
        let results = response["Operations"].as_array().expect("Operations");
        let statuses: Vec<&str> = results.iter().map(|r| r["status"].as_str().unwrap_or("?")).collect();
        // The request itself takes one token of the burst of 3, its first
        // two operations the others; the refused ones take no time, so the
        // last is refused before a token comes back.
        assert_eq!(statuses[..2], ["201", "201"], "{statuses:?}");
        assert_eq!(statuses.last(), Some(&"429"), "{statuses:?}");
        assert!(statuses.iter().all(|s| *s == "201" || *s == "429"), "{statuses:?}");
        for refused in results.iter().filter(|r| r["status"] == json!("429")) {
            assert_eq!(refused["response"]["schemas"], json!([ERROR_SCHEMA]), "{refused:#}");
            assert_eq!(refused["response"]["status"], json!("429"));
        }

        let written: Vec<String> = results
            .iter()
            .filter(|r| r["status"] == json!("201"))
            .map(|r| {
                let i = r["bulkId"]
                    .as_str()
                    .and_then(|id| id.strip_prefix('u'))
                    .expect("bulkId");
                format!("bulk{i}@example.com")
            })
            .collect();
        assert_eq!(
            user_names(&mesh, &scim).await,
            written,
            "refused operations write nothing"
        );
    }
);

both_backends!(
    large_bodies_count_against_the_rate_whether_sent_or_answered,
    start_with_slow_rate_by_bytes,
    |mesh: TestMesh| async move {
        let mut large = user("large@example.com");
        large["displayName"] = json!("x".repeat(10_000));

        // A POST of about 10 KB from a full bucket of 3 is admitted. It
        // owes 1 token, about 9 for its body and 9 for its answer (the user
        // as stored), so the directory waits about 17 seconds.
        let sender = mesh.new_directory().await;
        sender.post("/Users", large.clone(), 201).await;
        let refused = sender.send_expecting_one_of(Method::GET, "/Users", None, &[429]).await;
        assert_scim_error(&refused, None);
        let detail = refused.body["detail"].as_str().expect("a detail");
        assert!(detail.contains("every 1000 bytes of a body"), "{detail}");
        let wait = retry_after(&refused);
        assert!((15..=20).contains(&wait), "Retry-After {wait} for about 17 tokens owed");

        // A GET without a body whose answer is the same user (written over
        // gRPC, which the gateway does not count) owes 1 token and about 9
        // for the answer.
        let reader = mesh.new_directory().await;
        let created = mesh
            .users()
            .create_user(CreateUserRequest {
                directory_id: reader.directory_id.clone(),
                resource_json: large.to_string(),
            })
            .await
            .expect("CreateUser")
            .into_inner();
        let path = format!("/Users/{}", created.id);
        let read = reader.get(&path, 200).await;
        assert_eq!(
            read.body["displayName"], large["displayName"],
            "the answer crosses whole"
        );
        let refused = reader.send_expecting_one_of(Method::GET, &path, None, &[429]).await;
        let wait = retry_after(&refused);
        assert!((7..=10).contains(&wait), "Retry-After {wait} for about 8 tokens owed");

        // A small answer costs one token: a fresh directory reads its
        // empty list three times, its burst.
        let small = mesh.new_directory().await;
        for _ in 0..3 {
            small.get("/Users", 200).await;
        }
    }
);

async fn start_with_one_request_at_a_time(database: &ScratchDatabase) -> TestMesh {
    TestMesh::start_with(database, &Target::ALL, |config| {
        config.traffic.max_concurrent_requests = 1;
    })
    .await
}

/// Sends the head of a `POST /Users` and stalls in its body: the gateway
/// admits a request before it reads the body, so this one holds a slot
/// until the connection closes.
async fn stall_in_a_body(mesh: &TestMesh, scim: &ScimClient) -> TcpStream {
    let mut stalled = TcpStream::connect(mesh.http_addr)
        .await
        .expect("connect to the gateway");
    let head = format!(
        "POST /scim/v2/{}/Users HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/scim+json\r\nContent-Length: 1000\r\n\r\n{{\"userName\": \"stall",
        scim.directory_id,
        mesh.http_addr,
        scim.token.as_deref().expect("a token"),
    );
    stalled.write_all(head.as_bytes()).await.expect("send the head");
    stalled
}

/// A stalled request holding the only slot, and the 503 another request got
/// meanwhile.
async fn hold_the_only_slot(mesh: &TestMesh, scim: &ScimClient) -> (TcpStream, ScimResponse) {
    let started = Instant::now();
    let mut stalled = stall_in_a_body(mesh, scim).await;
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no request was shed within 5 seconds"
        );
        let response = scim
            .send_expecting_one_of(Method::GET, "/Users", None, &[200, 503])
            .await;
        if response.status == 503 {
            return (stalled, response);
        }
        // This request got the slot before the stalled one was taken in;
        // if the gateway has answered the stalled one (503) or closed it,
        // stall again.
        let mut answer = [0; 64];
        match stalled.try_read(&mut answer) {
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
            _ => stalled = stall_in_a_body(mesh, scim).await,
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

both_backends!(
    with_every_slot_taken_a_request_gets_503_at_once,
    start_with_one_request_at_a_time,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let (stalled, shed) = hold_the_only_slot(&mesh, &scim).await;
        assert_scim_error(&shed, None);
        retry_after(&shed);
        let started = Instant::now();
        let again = scim.get("/Users", 503).await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "refused at once, not queued: {:?}",
            started.elapsed()
        );
        retry_after(&again);

        // The stalled client goes away, and its slot with it.
        drop(stalled);
        get_users_until(&scim, 200, 503).await;
        scim.post("/Users", user("after@example.com"), 201).await;
        assert_eq!(user_names(&mesh, &scim).await, ["after@example.com"]);
    }
);

/// Request bodies in flight may add up to 1,000 bytes: the stalled request
/// of [`stall_in_a_body`] takes them all.
async fn start_with_a_small_body_budget(database: &ScratchDatabase) -> TestMesh {
    TestMesh::start_with(database, &Target::ALL, |config| {
        config.traffic.max_body_bytes_in_flight = 1000;
    })
    .await
}

both_backends!(
    a_body_that_does_not_fit_the_budget_waits_then_gets_503_and_bodiless_requests_pass,
    start_with_a_small_body_budget,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let mut stalled = stall_in_a_body(&mesh, &scim).await;
        // Until the stalled request has taken the budget, a POST may get in.
        let started = Instant::now();
        let (refused, waited) = loop {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "no POST waited for the budget"
            );
            let sent = Instant::now();
            let response = scim
                .send_expecting_one_of(Method::POST, "/Users", Some(user("refused@example.com")), &[201, 503])
                .await;
            if response.status == 503 {
                break (response, sent.elapsed());
            }
            scim.delete(&format!("/Users/{}", response.body["id"].as_str().expect("an id")), 204)
                .await;
        };
        assert_scim_error(&refused, None);
        retry_after(&refused);
        assert!(
            waited >= Duration::from_millis(1500),
            "the POST waited for room before it was refused: {waited:?}"
        );
        // A request without a body needs none of the budget.
        scim.get("/Users", 200).await;

        // The stalled body arrives: its request completes, and the budget
        // is free again.
        let rest = format!("\"{}}}", " ".repeat(1000 - r#"{"userName": "stall"#.len() - 2));
        stalled
            .write_all(rest.as_bytes())
            .await
            .expect("send the rest of the body");
        let mut answer = vec![0; 12];
        tokio::io::AsyncReadExt::read_exact(&mut stalled, &mut answer)
            .await
            .expect("the stalled request's answer");
        assert_eq!(String::from_utf8_lossy(&answer), "HTTP/1.1 201");
        scim.post("/Users", user("after@example.com"), 201).await;
        assert_eq!(user_names(&mesh, &scim).await, ["after@example.com", "stall"]);
    }
);

/// PostgreSQL only: the request waits on a row lock another connection
/// holds, which SQLite, locking the whole file, does not have.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patch_that_waits_on_a_locked_row_past_its_deadline_is_503_and_changes_nothing() {
    let database = ScratchDatabase::new(Backend::Postgres);
    let mesh = TestMesh::start_with(&database, &Target::ALL, |config| {
        config.traffic.request_timeout = Duration::from_secs(1);
    })
    .await;
    let scim = mesh.new_directory().await;
    let created = scim.post("/Users", user("locked@example.com"), 201).await;
    let id = created.body["id"].as_str().expect("an id").to_owned();
    let etag = created.header("etag").expect("an ETag").to_owned();

    // Another writer holds the user's row, in a transaction left open.
    let db = idmesh_store::connect(database.url()).await.expect("connect");
    let lock = db.begin().await.expect("begin");
    let locked = lock
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT id FROM users WHERE id = $1 FOR UPDATE",
            [id.clone().into()],
        ))
        .await
        .expect("lock the user's row");
    assert!(locked.is_some(), "the user's row is there to lock");

    let rename = patch_op(json!([{"op": "replace", "path": "displayName", "value": "Renamed"}]));
    let started = Instant::now();
    let late = scim.patch(&format!("/Users/{id}"), rename.clone(), 503).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered soon after the 1 s deadline: {:?}",
        started.elapsed()
    );
    assert_scim_error(&late, None);
    retry_after(&late);

    lock.rollback().await.expect("release the lock");
    let unchanged = scim.get(&format!("/Users/{id}"), 200).await;
    assert_eq!(unchanged.header("etag"), Some(etag.as_str()), "the same version");
    assert_eq!(unchanged.body.get("displayName"), None);
    let renamed = scim.patch(&format!("/Users/{id}"), rename, 200).await;
    assert_eq!(renamed.body["displayName"], json!("Renamed"));
}

/// Small bounds, so that the requests over them are small too.
async fn start_with_small_limits(database: &ScratchDatabase) -> TestMesh {
    TestMesh::start_with(database, &Target::ALL, |config| {
        config.limits.max_document_bytes = 4096;
        config.limits.max_patch_operations = 5;
        config.limits.max_attribute_values = 5;
        config.limits.max_members_per_request = 5;
    })
    .await
}

both_backends!(
    a_body_over_max_document_bytes_is_413_and_writes_nothing,
    start_with_small_limits,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let mut large = user("large@example.com");
        large["displayName"] = json!("x".repeat(5000));
        let refused = scim.post("/Users", large, 413).await;
        assert_scim_error(&refused, None);
        assert!(user_names(&mesh, &scim).await.is_empty());

        let created = scim.create_user("small@example.com").await;
        let id = created["id"].as_str().expect("an id");
        let large_patch = patch_op(json!([{"op": "replace", "path": "displayName", "value": "x".repeat(5000)}]));
        let refused = scim.patch(&format!("/Users/{id}"), large_patch, 413).await;
        assert_scim_error(&refused, None);
        assert_eq!(scim.get(&format!("/Users/{id}"), 200).await.body, created);
    }
);

both_backends!(
    a_patch_growing_a_resource_past_max_document_bytes_is_invalid_value_and_changes_nothing,
    start_with_small_limits,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        // Each request is under the 4,096 bytes of a body, the two together
        // are not: a resource stays one that an IdP could PUT whole.
        let set =
            |op: &str, attribute: &str| patch_op(json!([{"op": op, "path": attribute, "value": "x".repeat(2500)}]));
        let created = scim.create_user("growing@example.com").await;
        let path = format!("/Users/{}", created["id"].as_str().expect("an id"));
        let grown = scim.patch(&path, set("add", "displayName"), 200).await.body;
        let refused = scim.patch(&path, set("add", "nickName"), 400).await;
        assert_scim_error(&refused, Some("invalidValue"));
        assert!(
            refused.body["detail"]
                .as_str()
                .is_some_and(|d| d.contains("the limit is 4096")),
            "{}",
            refused.body
        );
        assert_eq!(scim.get(&path, 200).await.body, grown, "nothing applied");

        let group = scim.create_group("Growing", &[]).await;
        let path = format!("/Groups/{}", group["id"].as_str().expect("an id"));
        let grown = scim.patch(&path, set("replace", "displayName"), 200).await.body;
        let refused = scim.patch(&path, set("add", "externalId"), 400).await;
        assert_scim_error(&refused, Some("invalidValue"));
        assert_eq!(scim.get(&path, 200).await.body, grown, "nothing applied");
    }
);

/// `{"a": {"a": … 1 …}}`, `levels` objects deep, as text: serde_json could
/// not build a value this deep to serialise.
fn nested(levels: usize) -> String {
    format!("{}1{}", "{\"a\": ".repeat(levels), "}".repeat(levels))
}

both_backends!(
    json_nested_deeper_than_the_limit_is_invalid_syntax_not_500,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        // 60 levels is over the default of 16; 200 is over what serde_json
        // itself parses (128).
        for levels in [60, 200] {
            let body = format!(
                r#"{{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "deep@example.com",
                    "urn:example:deep": {}}}"#,
                nested(levels)
            );
            let refused = scim
                .send_raw(Method::POST, "/Users", Some(body.into_bytes()), 400)
                .await;
            assert_scim_error(&refused, Some("invalidSyntax"));
        }
        assert!(user_names(&mesh, &scim).await.is_empty());

        let created = scim.create_user("shallow@example.com").await;
        let id = created["id"].as_str().expect("an id");
        let deep_patch = format!(
            r#"{{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{{"op": "add", "path": "nickName", "value": {}}}]}}"#,
            nested(60)
        );
        let refused = scim
            .send_raw(
                Method::PATCH,
                &format!("/Users/{id}"),
                Some(deep_patch.into_bytes()),
                400,
            )
            .await;
        assert_scim_error(&refused, Some("invalidSyntax"));
        assert_eq!(scim.get(&format!("/Users/{id}"), 200).await.body, created);
    }
);

both_backends!(
    more_patch_operations_than_the_limit_are_too_many_and_apply_none,
    start_with_small_limits,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let created = scim.create_user("patched@example.com").await;
        let path = format!("/Users/{}", created["id"].as_str().expect("an id"));
        let operations = |n: usize| {
            let replaces: Vec<Value> = (0..n)
                .map(|i| json!({"op": "replace", "path": "displayName", "value": format!("Name {i}")}))
                .collect();
            patch_op(Value::Array(replaces))
        };
        let refused = scim.patch(&path, operations(6), 400).await;
        assert_scim_error(&refused, Some("tooMany"));
        assert_eq!(scim.get(&path, 200).await.body, created, "no operation applied");

        let patched = scim.patch(&path, operations(5), 200).await;
        assert_eq!(patched.body["displayName"], json!("Name 4"));
    }
);

fn emails(range: std::ops::Range<usize>) -> Value {
    range
        .map(|i| json!({"value": format!("mail{i}@example.com"), "type": "work"}))
        .collect()
}

both_backends!(
    more_values_of_one_attribute_than_the_limit_are_too_many_on_post_and_patch,
    start_with_small_limits,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let mut six = user("six@example.com");
        six["emails"] = emails(0..6);
        let refused = scim.post("/Users", six, 400).await;
        assert_scim_error(&refused, Some("tooMany"));
        assert!(user_names(&mesh, &scim).await.is_empty());

        let mut five = user("five@example.com");
        five["emails"] = emails(0..5);
        let created = scim.post("/Users", five, 201).await.body;
        let path = format!("/Users/{}", created["id"].as_str().expect("an id"));

        // One more value makes six in the stored document.
        let add_one = patch_op(json!([{"op": "add", "path": "emails", "value": emails(5..6)}]));
        let refused = scim.patch(&path, add_one, 400).await;
        assert_scim_error(&refused, Some("tooMany"));
        assert_eq!(scim.get(&path, 200).await.body, created, "nothing added");
    }
);

both_backends!(
    more_members_in_one_request_than_the_limit_are_too_many,
    start_with_small_limits,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let mut ids = Vec::new();
        for i in 0..6 {
            let created = scim.create_user(&format!("member{i}@example.com")).await;
            ids.push(created["id"].as_str().expect("an id").to_owned());
        }
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();

        let refused = scim.post("/Groups", idmesh_tests::group("Six", &ids), 400).await;
        assert_scim_error(&refused, Some("tooMany"));
        let groups = scim.get("/Groups", 200).await.body;
        assert_eq!(groups["totalResults"], json!(0), "no group is created");

        let created = scim.create_group("Empty", &[]).await;
        let path = format!("/Groups/{}", created["id"].as_str().expect("an id"));
        let members: Vec<Value> = ids.iter().map(|id| json!({"value": id})).collect();
        let add_six = patch_op(json!([{"op": "add", "path": "members", "value": members}]));
        let refused = scim.patch(&path, add_six, 400).await;
        assert_scim_error(&refused, Some("tooMany"));
        let replace_with_six = idmesh_tests::group("Empty", &ids);
        let refused = scim.put(&path, replace_with_six, 400).await;
        assert_scim_error(&refused, Some("tooMany"));
        assert_eq!(scim.get(&path, 200).await.body, created, "no member added");

        let add_five = patch_op(json!([{"op": "add", "path": "members", "value": members[..5]}]));
        let patched = scim.patch(&path, add_five, 200).await;
        assert_eq!(patched.body["members"].as_array().map(Vec::len), Some(5));
    }
);

/// `id eq "0" or id eq "1" or …`, `terms` comparisons.
fn filter_of(terms: usize) -> String {
    (0..terms)
        .map(|i| format!("id eq \"{i}\""))
        .collect::<Vec<_>>()
        .join(" or ")
}

both_backends!(
    a_filter_of_more_than_100_terms_is_too_many,
    |mesh: TestMesh| async move {
        let scim = mesh.new_directory().await;
        let refused = scim
            .get(&format!("/Users?filter={}", encode(&filter_of(101))), 400)
            .await;
        assert_scim_error(&refused, Some("tooMany"));
        let search = |terms: usize| {
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                "filter": filter_of(terms),
            })
        };
        let refused = scim.post("/.search", search(101), 400).await;
        assert_scim_error(&refused, Some("tooMany"));

        let listed = scim
            .get(&format!("/Users?filter={}", encode(&filter_of(100))), 200)
            .await;
        assert_eq!(listed.body["totalResults"], json!(0));
        scim.post("/.search", search(100), 200).await;
    }
);
