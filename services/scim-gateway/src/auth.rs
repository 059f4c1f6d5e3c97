//! Bearer-token authentication: a token is accepted only under the SCIM base
//! URL of its own directory.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use idmesh_proto::v1::ResolveTokenRequest;
use scim::ScimError;
use sha2::{Digest, Sha256};
use tonic::Code;

use crate::AppState;
use crate::error::ApiError;

/// How long a resolved token is trusted without asking directory-service
/// again: a revoked token stops working within this time.
const TOKEN_CACHE_TTL: Duration = Duration::from_secs(10);
const TOKEN_CACHE_CAPACITY: u64 = 10_000;

/// Token → directory answers, keyed by the token's SHA-256 so that no
/// secret sits in memory longer than a request.
#[derive(Debug)]
pub struct TokenCache(moka::sync::Cache<String, Arc<str>>);

impl TokenCache {
    pub fn new() -> Self {
        Self(
            moka::sync::Cache::builder()
                .max_capacity(TOKEN_CACHE_CAPACITY)
                .time_to_live(TOKEN_CACHE_TTL)
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
    request: Request,
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
    let token_directory = match state.tokens.0.get(&key) {
        Some(directory) => directory,
        None => {
            let resolved = state
                .directories
                .clone()
                .resolve_token(ResolveTokenRequest {
                    secret: secret.to_owned(),
                })
                .await;
            match resolved {
                Ok(response) => {
                    let directory: Arc<str> = response.into_inner().directory_id.into();
                    state.tokens.0.insert(key, directory.clone());
                    directory
                }
                Err(status) if status.code() == Code::NotFound => return Err(unauthorized()),
                Err(status) => return Err(status.into()),
            }
        }
    };
    if *token_directory != **directory_id {
        tracing::warn!(%directory_id, "bearer token of another directory");
        return Err(unauthorized());
    }
    Ok(next.run(request).await)
}
