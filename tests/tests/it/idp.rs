//! Recorded IdP traffic replayed against the mesh, on PostgreSQL and SQLite.
//!
//! Each `tests/fixtures/idp/<idp>/*.json` is one suite: the requests that
//! IdP sends, in its order, with its headers, casing and quirks, and what
//! each needs back. Its `"source"` names the IdP's public documentation or
//! test suite it was taken from. A suite runs in a directory of its own,
//! with the directory's bearer token added to every request.
//!
//! A suite file:
//!
//! ```json
//! {"idp": "Okta", "source": "…", "steps": [{
//!   "name": "what the IdP is doing",
//!   "method": "POST", "path": "/Users?…",
//!   "headers": {"Content-Type": "application/scim+json"},
//!   "body": {…},
//!   "expect": {"status": 201, "json": {"/userName": "…", "/id": {"$present": true}},
//!              "headers": {"ETag": {"$present": true}}},
//!   "capture": {"user_id": "/id"}
//! }]}
//! ```
//!
//! `{{name}}` in a path, a header or any string of a body is replaced by
//! what an earlier step captured under `name` (a JSON pointer into its
//! response body), or by a fresh value for `{{random_guid}}` (one per
//! suite). An expected JSON value is compared exactly, except the matchers
//! `{"$present": true}`, `{"$absent": true}` and `{"$len": n}` (an array's
//! length); an expected header value is a prefix of the one received, or
//! one of the matchers `$present` and `$absent`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use idmesh_tests::{ScimClient, TestMesh, both_backends};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Map, Value};

/// The most steps one suite may have: a fixture is input too.
const MAX_STEPS: usize = 200;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Suite {
    idp: String,
    /// The public documentation or test suite the traffic comes from.
    source: String,
    steps: Vec<Step>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Step {
    name: String,
    method: String,
    path: String,
    #[serde(default)]
    headers: Map<String, Value>,
    #[serde(default)]
    body: Option<Value>,
    expect: Expect,
    #[serde(default)]
    capture: HashMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    status: u16,
    #[serde(default)]
    json: Map<String, Value>,
    #[serde(default)]
    headers: Map<String, Value>,
}

/// The suites of one IdP, in file-name order.
fn suites(idp: &str) -> Vec<(PathBuf, Suite)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/idp").join(idp);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("{}: {err}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} has no suite", dir.display());
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
            let suite: Suite = serde_json::from_str(&text).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
            assert!(!suite.source.trim().is_empty(), "{} names no source", path.display());
            assert!(suite.steps.len() <= MAX_STEPS, "{} is too long", path.display());
            (path, suite)
        })
        .collect()
}

/// `text` with every `{{name}}` replaced by its captured value.
fn fill(text: &str, vars: &HashMap<String, String>, at: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let tail = &rest[start + 2..];
        let end = tail
            .find("}}")
            .unwrap_or_else(|| panic!("{at}: unclosed {{{{ in {text:?}"));
        let name = &tail[..end];
        let value = vars
            .get(name)
            .unwrap_or_else(|| panic!("{at}: nothing captured as {name:?}"));
        out.push_str(value);
        rest = &tail[end + 2..];
    }
    out.push_str(rest);
    out
}

fn fill_value(value: &Value, vars: &HashMap<String, String>, at: &str) -> Value {
    match value {
        Value::String(s) => Value::String(fill(s, vars, at)),
        Value::Array(items) => Value::Array(items.iter().map(|item| fill_value(item, vars, at)).collect()),
        Value::Object(members) => Value::Object(
            members
                .iter()
                .map(|(key, member)| (fill(key, vars, at), fill_value(member, vars, at)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Checks one expected JSON value (or matcher) at `pointer` of `body`.
fn check_json(body: &Value, pointer: &str, expected: &Value, at: &str) {
    let found = body.pointer(pointer);
    match expected
        .as_object()
        .and_then(|m| m.iter().next().filter(|_| m.len() == 1))
    {
        Some((matcher, Value::Bool(true))) if matcher == "$present" => {
            assert!(
                found.is_some_and(|v| !v.is_null()),
                "{at}: {pointer} is missing in {body:#}"
            );
        }
        Some((matcher, Value::Bool(true))) if matcher == "$absent" => {
            assert!(found.is_none(), "{at}: {pointer} is present in {body:#}");
        }
        Some((matcher, Value::Number(n))) if matcher == "$len" => {
            let len = found.and_then(Value::as_array).map(Vec::len);
            assert_eq!(
                len.and_then(|len| u64::try_from(len).ok()),
                n.as_u64(),
                "{at}: {pointer} in {body:#}"
            );
        }
        _ => assert_eq!(found, Some(expected), "{at}: {pointer} in {body:#}"),
    }
}

/// Replays every suite of `idp`, each in a new directory of `mesh`.
async fn replay(mesh: &TestMesh, idp: &str) {
    for (path, suite) in suites(idp) {
        let scim = mesh.new_directory().await;
        replay_suite(&scim, &path, &suite).await;
    }
}

async fn replay_suite(scim: &ScimClient, path: &Path, suite: &Suite) {
    let http = reqwest::Client::new();
    let mut vars = HashMap::from([("random_guid".to_owned(), uuid::Uuid::new_v4().to_string())]);
    for (index, step) in suite.steps.iter().enumerate() {
        let at = format!("{} ({}) step {index} {:?}", path.display(), suite.idp, step.name);
        let method = Method::from_bytes(step.method.as_bytes()).unwrap_or_else(|err| panic!("{at}: {err}"));
        let url = format!("{}{}", scim.base_url, fill(&step.path, &vars, &at));
        let mut request = http.request(method, url);
        if let Some(token) = &scim.token {
            request = request.bearer_auth(token);
        }
        for (name, value) in &step.headers {
            let value = value
                .as_str()
                .unwrap_or_else(|| panic!("{at}: header {name} is not a string"));
            request = request.header(name.as_str(), fill(value, &vars, &at));
        }
        if let Some(body) = &step.body {
            request = request.body(fill_value(body, &vars, &at).to_string());
        }
        let response = request.send().await.unwrap_or_else(|err| panic!("{at}: {err}"));
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap_or_else(|err| panic!("{at}: {err}"));
        let body: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|err| panic!("{at}: the answer is not JSON ({err}): {bytes:?}"))
        };
        assert_eq!(status, step.expect.status, "{at}: answered {status}: {body:#}");
        for (pointer, expected) in &step.expect.json {
            check_json(&body, pointer, &fill_value(expected, &vars, &at), &at);
        }
        for (name, expected) in &step.expect.headers {
            let found = headers.get(name.as_str()).and_then(|v| v.to_str().ok());
            match expected {
                Value::String(prefix) => {
                    let prefix = fill(prefix, &vars, &at);
                    assert!(
                        found.is_some_and(|v| v.starts_with(&prefix)),
                        "{at}: header {name} is {found:?}, expected {prefix:?}"
                    );
                }
                _ if expected.get("$absent").is_some() => assert!(found.is_none(), "{at}: header {name} is {found:?}"),
                _ => assert!(found.is_some(), "{at}: no header {name}"),
            }
        }
        for (name, pointer) in &step.capture {
            let value = match body.pointer(pointer) {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => panic!("{at}: nothing at {pointer} to capture as {name}: {body:#}"),
            };
            vars.insert(name.clone(), value);
        }
    }
}

both_backends!(okta_suites_replay, |mesh: TestMesh| async move {
    replay(&mesh, "okta").await;
});

both_backends!(entra_id_suites_replay, |mesh: TestMesh| async move {
    replay(&mesh, "entra").await;
});

both_backends!(onelogin_suites_replay, |mesh: TestMesh| async move {
    replay(&mesh, "onelogin").await;
});

both_backends!(jumpcloud_suites_replay, |mesh: TestMesh| async move {
    replay(&mesh, "jumpcloud").await;
});

both_backends!(ping_suites_replay, |mesh: TestMesh| async move {
    replay(&mesh, "ping").await;
});
