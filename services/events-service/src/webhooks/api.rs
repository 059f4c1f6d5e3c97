//! The `idmesh.v1.WebhookService` gRPC API: registering, listing,
//! removing, rotating and replaying endpoints, and their attempts.

use idmesh_proto::v1 as pb;
use idmesh_proto::v1::webhook_service_server::WebhookService;
use idmesh_runtime::auth;
use sea_orm::DbErr;
use time::OffsetDateTime;
use tonic::{Code, Request, Response, Status};

use super::addresses;
use super::deliver::parse_types;
use super::signing;
use super::store::{MAX_PER_DIRECTORY, MAX_WEBHOOKS, Store};
use crate::entity::{webhook, webhook_attempt, webhook_cursor};
use crate::log::Log;
use crate::service::{checked_types, database, expired, page_size};

const MAX_URL_CHARS: usize = 2_048;
const MAX_DESCRIPTION_CHARS: usize = 256;

/// The longest a rotated-out secret may keep signing: seven days.
const MAX_PREVIOUS_VALID_SECONDS: i64 = 7 * 24 * 60 * 60;

/// The webhook gRPC implementation.
#[derive(Debug, Clone)]
pub struct WebhookApi {
    store: Store,
    log: Log,
    /// Whether endpoints may be on private networks.
    allow_private_networks: bool,
}

impl WebhookApi {
    /// The fully qualified gRPC service name, for health reporting.
    pub const SERVICE_NAME: &'static str = "idmesh.v1.WebhookService";

    pub(crate) fn new(store: Store, log: Log, allow_private_networks: bool) -> WebhookApi {
        WebhookApi {
            store,
            log,
            allow_private_networks,
        }
    }

    /// The endpoint `id`, once the caller may see its directory.
    async fn found<T>(&self, request: &Request<T>, id: &str) -> Result<webhook::Model, Status> {
        let principal = auth::caller(request)?;
        let webhook = self
            .store
            .get(id)
            .await
            .map_err(|err| database(&err))?
            .ok_or_else(|| idmesh_api::status::not_found(format!("webhook {id} not found")))?;
        principal.require_directory(&webhook.directory_id)?;
        Ok(webhook)
    }

    /// The endpoint as the API shows it, with its progress.
    async fn shown(&self, webhook: webhook::Model) -> Result<pb::Webhook, Status> {
        let cursors = self.store.cursors(&webhook.id).await.map_err(|err| database(&err))?;
        Ok(to_proto(webhook, cursors))
    }
}

fn now_ms() -> i64 {
    i64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn timestamp(ms: i64) -> Option<prost_types::Timestamp> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .map(idmesh_api::timestamp::to_proto)
}

fn to_proto(webhook: webhook::Model, cursors: Vec<webhook_cursor::Model>) -> pb::Webhook {
    let now = now_ms();
    pb::Webhook {
        types: parse_types(&webhook.types),
        created: timestamp(webhook.created_ms),
        disabled_reason: webhook.disabled_reason.unwrap_or_default(),
        disabled_at: webhook.disabled_ms.and_then(timestamp),
        previous_secret_expires: webhook.previous_expires_ms.filter(|at| *at > now).and_then(timestamp),
        progress: cursors
            .into_iter()
            .map(|cursor| pb::WebhookProgress {
                directory_id: cursor.directory_id,
                delivered_through: cursor.delivered_through,
                failed_attempts: cursor.failed_attempts,
                next_attempt: (cursor.failed_attempts > 0)
                    .then_some(cursor.next_attempt_ms)
                    .and_then(timestamp),
                failing_since: cursor.failing_since_ms.and_then(timestamp),
                last_error: cursor.last_error.unwrap_or_default(),
            })
            .collect(),
        id: webhook.id,
        directory_id: webhook.directory_id,
        url: webhook.url,
        description: webhook.description,
    }
}

fn attempt_to_proto(attempt: webhook_attempt::Model) -> pb::DeliveryAttempt {
    pb::DeliveryAttempt {
        directory_id: attempt.directory_id,
        sequence: attempt.sequence,
        event_id: attempt.event_id,
        event_type: attempt.event_type,
        attempt: attempt.attempt,
        time: timestamp(attempt.time_ms),
        duration_millis: attempt.duration_ms,
        status_code: attempt.status_code,
        error: attempt.error.unwrap_or_default(),
    }
}

/// An endpoint URL: absolute http or https, with a host and no
/// credentials (they would show in every listing), not too long, and not
/// an address on a private network unless those are allowed (a name is
/// checked when deliveries connect).
fn checked_url(url: &str, allow_private_networks: bool) -> Result<String, Status> {
    let invalid = |why: &str| idmesh_api::status::invalid_argument(format!("url {url:?} {why}"));
    if url.chars().count() > MAX_URL_CHARS {
        return Err(invalid(&format!("is longer than {MAX_URL_CHARS} characters")));
    }
    let parsed = url::Url::parse(url).map_err(|err| invalid(&format!("is not a URL: {err}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid("must be http:// or https://"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid("has no host"));
    }
    if let Some(why) = parsed
        .host_str()
        .and_then(|host| addresses::refuse_literal(host, allow_private_networks))
    {
        return Err(invalid(&format!(
            "points at {why}; deliveries inside your network need webhook_allow_private_networks"
        )));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(invalid(
            "must not carry credentials: the signature authenticates deliveries",
        ));
    }
    Ok(parsed.to_string())
}

fn new_secret() -> Result<String, Status> {
    signing::new_secret().map_err(|err| Status::internal(format!("no random bytes for a webhook secret: {err}")))
}

/// A page token of ListDeliveryAttempts: "a" and the attempt to continue
/// before.
fn parse_attempts_token(token: &str) -> Result<i64, Status> {
    if token.is_empty() {
        return Ok(0);
    }
    token
        .strip_prefix('a')
        .and_then(|id| id.parse::<i64>().ok())
        .filter(|id| *id > 0)
        .ok_or_else(|| {
            idmesh_api::status::with_reason(
                Code::InvalidArgument,
                Some(crate::INVALID_CURSOR),
                format!("{token:?} is not a page token ListDeliveryAttempts gave"),
            )
        })
}

fn db(err: DbErr) -> Status {
    database(&err)
}

#[tonic::async_trait]
impl WebhookService for WebhookApi {
    async fn create_webhook(
        &self,
        request: Request<pb::CreateWebhookRequest>,
    ) -> Result<Response<pb::CreateWebhookResponse>, Status> {
        if request.get_ref().directory_id.is_empty() && auth::caller(&request)?.directories.is_some() {
            return Err(idmesh_api::status::with_reason(
                Code::PermissionDenied,
                Some(auth::DIRECTORY_NOT_ALLOWED),
                "a webhook for every directory needs a key not limited to directories",
            ));
        }
        auth::authorize(&request)?;
        let request = request.into_inner();
        let url = checked_url(&request.url, self.allow_private_networks)?;
        let types = checked_types(&request.types)?;
        if request.description.chars().count() > MAX_DESCRIPTION_CHARS {
            return Err(idmesh_api::status::invalid_argument(format!(
                "the description is longer than {MAX_DESCRIPTION_CHARS} characters"
            )));
        }
        let (of_directory, all) = self.store.counts(&request.directory_id).await.map_err(db)?;
        if of_directory >= MAX_PER_DIRECTORY || all >= MAX_WEBHOOKS {
            return Err(Status::failed_precondition(format!(
                "at most {MAX_PER_DIRECTORY} webhooks per directory and {MAX_WEBHOOKS} in all; remove one first"
            )));
        }
        let secret = new_secret()?;
        let mut types: Vec<i32> = types.to_vec();
        types.sort_unstable();
        types.dedup();
        let model = webhook::Model {
            id: uuid::Uuid::now_v7().to_string(),
            directory_id: request.directory_id,
            url,
            types: types.iter().map(i32::to_string).collect::<Vec<_>>().join(","),
            description: request.description,
            secret: secret.clone(),
            previous_secret: None,
            previous_expires_ms: None,
            created_ms: now_ms(),
            disabled_reason: None,
            disabled_ms: None,
        };
        let saved = self.store.create(model).await.map_err(db)?;
        tracing::info!(webhook_id = %saved.id, directory_id = %saved.directory_id, url = %saved.url, "webhook created");
        Ok(Response::new(pb::CreateWebhookResponse {
            webhook: Some(self.shown(saved).await?),
            secret,
        }))
    }

    async fn list_webhooks(
        &self,
        request: Request<pb::ListWebhooksRequest>,
    ) -> Result<Response<pb::ListWebhooksResponse>, Status> {
        let principal = auth::caller(&request)?;
        let directory_id = request.get_ref().directory_id.as_str();
        let filter = if directory_id.is_empty() {
            None
        } else {
            principal.require_directory(directory_id)?;
            Some(directory_id)
        };
        let listed: Vec<webhook::Model> = self
            .store
            .list(filter)
            .await
            .map_err(db)?
            .into_iter()
            .filter(|webhook| principal.may_access(&webhook.directory_id))
            .collect();
        let ids: Vec<String> = listed.iter().map(|webhook| webhook.id.clone()).collect();
        let mut cursors = self.store.cursors_of(&ids).await.map_err(db)?;
        let webhooks = listed
            .into_iter()
            .map(|webhook| {
                let progress = cursors.remove(&webhook.id).unwrap_or_default();
                to_proto(webhook, progress)
            })
            .collect();
        Ok(Response::new(pb::ListWebhooksResponse { webhooks }))
    }

    async fn delete_webhook(
        &self,
        request: Request<pb::DeleteWebhookRequest>,
    ) -> Result<Response<pb::DeleteWebhookResponse>, Status> {
        let webhook = self.found(&request, &request.get_ref().id).await?;
        self.store.delete(&webhook.id).await.map_err(db)?;
        tracing::info!(webhook_id = %webhook.id, url = %webhook.url, "webhook removed");
        Ok(Response::new(pb::DeleteWebhookResponse {}))
    }

    async fn rotate_webhook_secret(
        &self,
        request: Request<pb::RotateWebhookSecretRequest>,
    ) -> Result<Response<pb::RotateWebhookSecretResponse>, Status> {
        let webhook = self.found(&request, &request.get_ref().id).await?;
        let keep = request.get_ref().previous_valid_seconds;
        if !(0..=MAX_PREVIOUS_VALID_SECONDS).contains(&keep) {
            return Err(idmesh_api::status::invalid_argument(format!(
                "previous_valid_seconds must be between 0 and {MAX_PREVIOUS_VALID_SECONDS}, not {keep}"
            )));
        }
        let secret = new_secret()?;
        let previous_expires_ms = (keep > 0).then(|| now_ms().saturating_add(keep.saturating_mul(1000)));
        let rotated = self
            .store
            .rotate(&webhook.id, secret.clone(), previous_expires_ms)
            .await
            .map_err(db)?
            .ok_or_else(|| idmesh_api::status::not_found(format!("webhook {} not found", webhook.id)))?;
        tracing::info!(webhook_id = %rotated.id, previous_valid_seconds = keep, "webhook secret rotated");
        Ok(Response::new(pb::RotateWebhookSecretResponse {
            webhook: Some(self.shown(rotated).await?),
            secret,
        }))
    }

    async fn replay_webhook(
        &self,
        request: Request<pb::ReplayWebhookRequest>,
    ) -> Result<Response<pb::ReplayWebhookResponse>, Status> {
        let webhook = self.found(&request, &request.get_ref().id).await?;
        let request = request.into_inner();
        let directory_id = match (webhook.directory_id.as_str(), request.directory_id.as_str()) {
            ("", "") => {
                return Err(idmesh_api::status::invalid_argument(
                    "the webhook is for every directory: name the directory to replay",
                ));
            }
            ("", named) => named.to_owned(),
            (own, "") => own.to_owned(),
            (own, named) if own == named => own.to_owned(),
            (own, named) => {
                return Err(idmesh_api::status::invalid_argument(format!(
                    "the webhook is for directory {own}, not {named}"
                )));
            }
        };
        if request.from_sequence < 1 {
            return Err(idmesh_api::status::invalid_argument("from_sequence must be at least 1"));
        }
        let head = self.log.head(&directory_id).await.map_err(db)?;
        let after = request.from_sequence - 1;
        if after < head.pruned_through {
            return Err(expired(&directory_id, after, head.pruned_through));
        }
        if after > head.latest {
            return Err(idmesh_api::status::invalid_argument(format!(
                "directory {directory_id}'s log ends at {}; from_sequence may be at most {}",
                head.latest,
                head.latest + 1
            )));
        }
        self.store
            .replay(&webhook.id, &directory_id, request.from_sequence)
            .await
            .map_err(db)?;
        tracing::info!(webhook_id = %webhook.id, %directory_id, from_sequence = request.from_sequence, "webhook replay");
        let webhook = self
            .store
            .get(&webhook.id)
            .await
            .map_err(db)?
            .ok_or_else(|| idmesh_api::status::not_found(format!("webhook {} not found", webhook.id)))?;
        Ok(Response::new(pb::ReplayWebhookResponse {
            webhook: Some(self.shown(webhook).await?),
        }))
    }

    async fn list_delivery_attempts(
        &self,
        request: Request<pb::ListDeliveryAttemptsRequest>,
    ) -> Result<Response<pb::ListDeliveryAttemptsResponse>, Status> {
        let webhook = self.found(&request, &request.get_ref().webhook_id).await?;
        let request = request.into_inner();
        let limit = page_size(request.page_size)?;
        let before = parse_attempts_token(&request.page_token)?;
        let attempts = self.store.attempts(&webhook.id, before, limit).await.map_err(db)?;
        let full = u64::try_from(attempts.len()).unwrap_or(u64::MAX) == limit;
        let next_page_token = match attempts.last() {
            Some(last) if full => format!("a{}", last.id),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListDeliveryAttemptsResponse {
            attempts: attempts.into_iter().map(attempt_to_proto).collect(),
            next_page_token,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_url_is_absolute_http_or_https_without_credentials() {
        assert_eq!(
            checked_url("https://hooks.example.com/idmesh?x=1", false).expect("valid"),
            "https://hooks.example.com/idmesh?x=1"
        );
        assert!(checked_url("http://127.0.0.1:8080/", true).is_ok());
        assert!(checked_url("http://8.8.8.8/", false).is_ok());
        for bad in [
            "",
            "/relative",
            "ftp://example.com/",
            "https://user:pass@example.com/",
            "mailto:a@example.com",
            "unix:/var/run/socket",
            "http://127.0.0.1:8080/",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::1]/",
        ] {
            let status = checked_url(bad, false).expect_err(bad);
            assert_eq!(status.code(), Code::InvalidArgument, "{bad}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_CHARS));
        assert_eq!(
            checked_url(&long, true).expect_err("too long").code(),
            Code::InvalidArgument
        );
    }

    #[test]
    fn attempt_page_tokens_are_checked() {
        assert_eq!(parse_attempts_token("").expect("none"), 0);
        assert_eq!(parse_attempts_token("a42").expect("a token"), 42);
        for bad in ["42", "a", "a0", "a-1", "ax"] {
            assert_eq!(
                idmesh_api::status::reason(&parse_attempts_token(bad).expect_err(bad)).as_deref(),
                Some(crate::INVALID_CURSOR),
                "{bad}"
            );
        }
    }
}
