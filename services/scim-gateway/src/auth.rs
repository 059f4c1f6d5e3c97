//! Bearer-token authentication: a token is accepted only under the SCIM base
//! URL of its own directory.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{Path, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use idmesh_proto::v1::ResolveTokenRequest;
use scim::ScimError;
use sha2::{Digest, Sha256};
use tokio::time::Instant;
use tonic::Code;

use crate::AppState;
use crate::error::ApiError;
use crate::traffic::{Rate, Tenant};

/// How long a resolved token is trusted without asking directory-service
/// again, unless configured otherwise: a revoked token stops working, and a
/// directory's new rate applies, within this time.
pub const DEFAULT_TOKEN_CACHE_TTL: Duration = Duration::from_secs(10);
const TOKEN_CACHE_CAPACITY: u64 = 10_000;

/// directory-service's answers about tokens, keyed by the token's SHA-256
/// so that no secret sits in memory longer than a request: the directory
/// (and its rate) of a live token, and, as `None`, that a token is unknown,
/// so that a client repeating a bad token costs directory-service one
/// lookup per [`crate::Config::token_cache_ttl`], not one per request. A
/// token's secret is random, so an unknown one never becomes valid later.
#[derive(Debug)]
pub struct TokenCache(moka::sync::Cache<String, Option<Tenant>>);

impl TokenCache {
    pub fn new(ttl: Duration) -> Self {
        Self(
            moka::sync::Cache::builder()
                .max_capacity(TOKEN_CACHE_CAPACITY)
                .time_to_live(ttl)
                .build(),
        )
    }
}

fn unauthorized() -> ApiError {
    ApiError(ScimError::unauthorized(
        "a valid bearer token for this directory is required",
    ))
}

/// Lets the request through only with a live bearer token of the directory
/// named in its path. Anything else is 401, with the same answer whether the
/// token is unknown or belongs to another directory.
pub async fn require_directory_token(
    State(state): State<AppState>,
    Path(params): Path<HashMap<String, String>>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let directory_id = params.get("directory_id").ok_or_else(unauthorized)?;
    let secret = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, secret)| secret.trim())
        .filter(|secret| !secret.is_empty())
        .ok_or_else(unauthorized)?;

    let key = hex::encode(Sha256::digest(secret.as_bytes()));
    let tenant = match state.tokens.0.get(&key) {
        Some(tenant) => tenant,
        None => {
            let resolved = state
                .directories
                .clone()
                .resolve_token(ResolveTokenRequest {
                    secret: secret.to_owned(),
                })
                .await;
            let tenant = match resolved {
                Ok(response) => {
                    let response = response.into_inner();
                    Some(Tenant {
                        directory_id: response.directory_id.into(),
                        rate: response.rate_limit.as_ref().and_then(Rate::from_proto),
                        resolved_at: Instant::now(),
                    })
                }
                Err(status) if status.code() == Code::NotFound => None,
                Err(status) => return Err(status.into()),
            };
            state.tokens.0.insert(key, tenant.clone());
            tenant
        }
    };
    let tenant = tenant.ok_or_else(unauthorized)?;
    if *tenant.directory_id != **directory_id {
        tracing::warn!(%directory_id, "bearer token of another directory");
        return Err(unauthorized());
    }
    request.extensions_mut().insert(tenant);
    Ok(next.run(request).await)
}
