//! What the load generators in `tools/` share: a SCIM client for one
//! directory that fails loudly on any answer a benchmark did not expect
//! (or hands back any answer, for loads that count refusals), and the CPU
//! time that /proc counts ([`cpu`]).

pub mod cpu;

use std::time::Duration;

use anyhow::{Context, bail};
use reqwest::{Client, Method, StatusCode};
use serde_json::Value;

/// A SCIM client for one directory.
#[derive(Clone)]
pub struct Scim {
    http: Client,
    base_url: String,
    token: String,
    timeout: Duration,
}

/// What the server answered: the status, the JSON body (`Null` when there
/// is none or it is not JSON) and the `Retry-After` of a 429 or 503.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
    pub retry_after: Option<Duration>,
}

impl Scim {
    /// A client of the directory at `base_url` (as `idmesh dev` prints it)
    /// calling with `token`; each request may take up to `timeout`.
    pub fn new(base_url: &str, token: &str, timeout: Duration) -> anyhow::Result<Scim> {
        Ok(Scim {
            http: Client::builder().timeout(timeout).build()?,
            base_url: base_url.trim_end_matches('/').to_owned(),
            token: token.trim().to_owned(),
            timeout,
        })
    }

    /// The same directory through a connection pool of its own, for a load
    /// that runs on a runtime of its own.
    pub fn with_own_client(&self) -> anyhow::Result<Scim> {
        Scim::new(&self.base_url, &self.token, self.timeout)
    }

    /// The directory's id: the last segment of its base URL.
    pub fn directory_id(&self) -> &str {
        self.base_url.rsplit('/').next().unwrap_or_default()
    }

    /// Sends a request and returns its status and JSON body (`Null` when
    /// there is none), failing unless the status is `expect`ed.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        expect: &[StatusCode],
    ) -> anyhow::Result<(StatusCode, Value)> {
        let (status, _, bytes) = self.exchange(&method, path, body).await?;
        if !expect.contains(&status) {
            bail!("{method} {path}: {status}: {}", String::from_utf8_lossy(&bytes));
        }
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).with_context(|| format!("{method} {path}: not JSON"))?
        };
        Ok((status, body))
    }

    /// Sends a request and returns what the server answered, whatever the
    /// status: for loads that count refusals rather than fail on them.
    pub async fn answer(&self, method: Method, path: &str, body: Option<&Value>) -> anyhow::Result<Answer> {
        let (status, retry_after, bytes) = self.exchange(&method, path, body).await?;
        Ok(Answer {
            status,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            retry_after,
        })
    }

    async fn exchange(
        &self,
        method: &Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(StatusCode, Option<Duration>, Vec<u8>)> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base_url))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/scim+json")
                .body(body.to_string());
        }
        let response = request.send().await.with_context(|| format!("{method} {path}"))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|value| value.to_str().ok()?.parse().ok())
            .map(Duration::from_secs);
        let bytes = response
            .bytes()
            .await
            .with_context(|| format!("{method} {path}: the body"))?;
        Ok((status, retry_after, Vec::from(bytes)))
    }
}

impl std::fmt::Debug for Scim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scim")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// The `id` of a SCIM resource.
pub fn id_of(resource: &Value) -> anyhow::Result<String> {
    resource["id"]
        .as_str()
        .map(str::to_owned)
        .context("a resource without an id")
}
