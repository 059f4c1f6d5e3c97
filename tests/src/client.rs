//! The raw SCIM client: requests and answers as JSON values, with the
//! expected status asserted on every call. Tests that check exact bodies,
//! headers and errors use it; [`crate::resources`] types the common calls.

use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::resources::{NewGroup, NewUser};

/// A SCIM client bound to one directory's base URL. Every call states the
/// status it expects, and fails the test with the body when it differs.
#[derive(Debug, Clone)]
pub struct ScimClient {
    http: reqwest::Client,
    pub base_url: String,
    pub directory_id: String,
    /// The bearer token sent; `None` sends no Authorization header.
    pub token: Option<String>,
}

/// What the server answered.
#[derive(Debug)]
pub struct ScimResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl ScimResponse {
    /// A response header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

impl ScimClient {
    /// A client of the directory at `base_url`, sending `token`.
    pub(crate) fn new(base_url: String, directory_id: String, token: String) -> ScimClient {
        ScimClient {
            http: reqwest::Client::new(),
            base_url,
            directory_id,
            token: Some(token),
        }
    }

    /// The same directory, authenticating with `token` instead.
    pub fn with_token(&self, token: Option<&str>) -> ScimClient {
        ScimClient {
            token: token.map(str::to_owned),
            ..self.clone()
        }
    }

    /// Sends raw bytes as `application/scim+json` to `path` (relative to the
    /// directory's base URL) and checks the status.
    pub async fn send_raw(&self, method: Method, path: &str, body: Option<Vec<u8>>, expect: u16) -> ScimResponse {
        self.exchange(method, path, &[], body, expect).await
    }

    /// Sends `method` to `path` with extra request headers (`If-Match`,
    /// `If-None-Match`, …) and checks the status, like [`ScimClient::send`].
    pub async fn send_with_headers(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
        expect: u16,
    ) -> ScimResponse {
        let bytes = body.map(|b| serde_json::to_vec(&b).expect("JSON"));
        self.exchange(method, path, headers, bytes, expect).await
    }

    /// Sends `method` to `path` and checks that the status is one of
    /// `expect`: for a test that repeats a request until the server changes
    /// its answer (a rate that applies, a slot that frees up).
    pub async fn send_expecting_one_of(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        expect: &[u16],
    ) -> ScimResponse {
        let bytes = body.map(|b| serde_json::to_vec(&b).expect("JSON"));
        self.exchange_expecting(method, path, &[], bytes, expect).await
    }

    /// One request with extra headers and a raw body; checks the status.
    async fn exchange(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
        expect: u16,
    ) -> ScimResponse {
        self.exchange_expecting(method, path, headers, body, &[expect]).await
    }

    /// One request with extra headers and a raw body; checks that the
    /// status is one of `expect`.
    async fn exchange_expecting(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
        expect: &[u16],
    ) -> ScimResponse {
        let mut request = self.http.request(method.clone(), format!("{}{path}", self.base_url));
        // SCIM's own media type, unless the test says what it accepts.
        if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("accept")) {
            request = request.header("accept", "application/scim+json");
        }
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.header("content-type", "application/scim+json").body(body);
        }
        let response = request.send().await.expect("the gateway answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("a response body");
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        assert!(
            expect.contains(&status),
            "{method} {path} answered {status}, not one of {expect:?}: {body:#}"
        );
        ScimResponse { status, headers, body }
    }

    pub async fn send(&self, method: Method, path: &str, body: Option<Value>, expect: u16) -> ScimResponse {
        let bytes = body.map(|b| serde_json::to_vec(&b).expect("JSON"));
        self.send_raw(method, path, bytes, expect).await
    }

    pub async fn get(&self, path: &str, expect: u16) -> ScimResponse {
        self.send(Method::GET, path, None, expect).await
    }

    pub async fn post(&self, path: &str, body: Value, expect: u16) -> ScimResponse {
        self.send(Method::POST, path, Some(body), expect).await
    }

    pub async fn put(&self, path: &str, body: Value, expect: u16) -> ScimResponse {
        self.send(Method::PUT, path, Some(body), expect).await
    }

    pub async fn patch(&self, path: &str, body: Value, expect: u16) -> ScimResponse {
        self.send(Method::PATCH, path, Some(body), expect).await
    }

    pub async fn delete(&self, path: &str, expect: u16) -> ScimResponse {
        self.send(Method::DELETE, path, None, expect).await
    }

    /// Creates a minimal user and returns its SCIM resource.
    pub async fn create_user(&self, user_name: &str) -> Value {
        self.post("/Users", user(user_name), 201).await.body
    }

    /// Creates a group with these members (ids of users or groups) and
    /// returns its SCIM resource.
    pub async fn create_group(&self, display_name: &str, members: &[&str]) -> Value {
        self.post("/Groups", group(display_name, members), 201).await.body
    }
}

/// A minimal SCIM User body, as Okta sends it: [`NewUser::new`] as JSON,
/// for tests that change it before sending.
pub fn user(user_name: &str) -> Value {
    serde_json::to_value(NewUser::new(user_name)).expect("a JSON body")
}

/// A SCIM Group body with these members (ids of users or groups):
/// [`NewGroup::new`] as JSON.
pub fn group(display_name: &str, members: &[&str]) -> Value {
    serde_json::to_value(NewGroup::new(display_name, members)).expect("a JSON body")
}

/// A SCIM PatchOp body.
pub fn patch_op(operations: Value) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": operations
    })
}

/// Percent-encodes a query parameter value.
pub fn encode(value: &str) -> String {
    let mut encoded = String::new();
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => encoded.push(char::from(byte)),
            _ => encoded.push_str(&format!("%{byte:02X}")),
        }
    }
    encoded
}
