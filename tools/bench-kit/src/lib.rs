//! What the load generators in `tools/` share: a SCIM client for one
//! directory that fails loudly on any answer a benchmark did not expect,
//! and the CPU time that /proc counts ([`cpu`]).

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
}

impl Scim {
    /// A client of the directory at `base_url` (as `idmesh dev` prints it)
    /// calling with `token`; each request may take up to `timeout`.
    pub fn new(base_url: &str, token: &str, timeout: Duration) -> anyhow::Result<Scim> {
        Ok(Scim {
            http: Client::builder().timeout(timeout).build()?,
            base_url: base_url.trim_end_matches('/').to_owned(),
            token: token.trim().to_owned(),
        })
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
        let bytes = response
            .bytes()
            .await
            .with_context(|| format!("{method} {path}: the body"))?;
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
