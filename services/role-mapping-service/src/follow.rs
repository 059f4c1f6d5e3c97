//! The follower: turns changes of users' effective roles into ROLE_ASSIGNED
//! and ROLE_REMOVED events and, where a directory's mapping asks for it,
//! revokes the sessions of a user who lost a role.
//!
//! Answers (GetEffectiveRoles, …) never wait for it: they are computed on
//! read. The follower keeps, per directory with a role mapping, the roles
//! it last announced for each user (`role_holdings`) and how far it has
//! read the directory's change log (`role_followers`). About once a second
//! it reads the events after that point from events-service and decides
//! again the roles of every user they touch:
//!
//! - a user's own events: that user;
//! - a member added or removed: the member, or every user when the member
//!   is a group (the users below it may have gained or lost a group);
//! - a group deleted: every user.
//!
//! Deciding is level-triggered: it compares what the mapping gives a user
//! *now* with the recorded roles, so reading an event twice, or a batch of
//! events that cancel out, announces nothing extra. A new or changed
//! mapping, or a log position that retention has removed, decides every
//! user again.
//!
//! Each decision is applied in one transaction of this service's database:
//! the follower row is locked (so replicas apply one at a time and never
//! announce a change twice), the position moves only if nobody moved it
//! meanwhile, the recorded roles change and the events go into the outbox
//! that events-service drains (`idmesh.v1.OutboxService`). The sessions of
//! a user who lost a role are revoked before that commit; if revoking
//! fails, nothing commits and the batch is decided again, so a removal is
//! never announced without its revocation.
//!
//! Every call to a peer and every transaction runs under [`CALL_TIMEOUT`]
//! (the deadline travels as `grpc-timeout`): a peer that never answers
//! fails the round, which the next one tries again, instead of stopping
//! the follower.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::future::Future;
use std::time::Duration;

use idmesh_api::timestamp;
use idmesh_outbox::Outbox;
use idmesh_proto::v1 as pb;
use idmesh_proto::v1::event_service_client::EventServiceClient;
use idmesh_proto::v1::session_service_client::SessionServiceClient;
use idmesh_runtime::auth::AuthChannel;
use idmesh_runtime::clock::Clock;
use idmesh_runtime::deadline;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, IntoActiveModel, QueryFilter,
    QuerySelect,
};
use tokio_util::sync::CancellationToken;
use tonic::Code;

use crate::Error;
use crate::entity::{role_follower, role_holding, role_mapping};
use crate::mapping::Mapping;
use crate::service::{Decision, MAX_USER_PAGE, RoleApi};
use crate::store;

/// The table of role-mapping-service's outbox of role events.
pub(crate) const OUTBOX_TABLE: &str = "role_event_outbox";

/// How often the follower looks for new events.
const POLL: Duration = Duration::from_secs(1);

/// Events read per page of a directory's log.
const EVENT_PAGE: i32 = 500;

/// Pages of one directory read per round, so that a busy directory does not
/// hold the others back.
const PAGES_PER_ROUND: usize = 20;

/// Users per statement when reading or writing holdings.
const CHUNK: usize = 500;

/// How long one call to a peer, or one transaction with its revocations,
/// may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// What the follower needs.
#[derive(Clone)]
pub(crate) struct Follower {
    pub db: DatabaseConnection,
    pub api: RoleApi,
    pub events: EventServiceClient<AuthChannel>,
    pub sessions: SessionServiceClient<AuthChannel>,
    pub outbox: Outbox,
    pub clock: Clock,
}

/// Follows every directory with a role mapping until `shutdown`. A
/// directory that fails (events-service or a peer unreachable) is tried
/// again the next round; the others go on.
pub(crate) async fn run(follower: Follower, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            () = shutdown.cancelled() => return,
        }
        let directories: Vec<String> = match role_mapping::Entity::find()
            .select_only()
            .column(role_mapping::Column::DirectoryId)
            .into_tuple()
            .all(&follower.db)
            .await
        {
            Ok(directories) => directories,
            Err(err) => {
                tracing::warn!(error = %err, "could not list the directories with a role mapping; will try again");
                continue;
            }
        };
        for directory_id in directories {
            let followed = tokio::select! {
                followed = follower.follow(&directory_id) => followed,
                () = shutdown.cancelled() => return,
            };
            if let Err(err) = followed {
                tracing::warn!(%directory_id, error = %err, "could not follow the directory's roles; will try again");
            }
        }
    }
}

impl std::fmt::Debug for Follower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Follower").finish_non_exhaustive()
    }
}

impl Follower {
    /// One round of one directory.
    async fn follow(&self, directory_id: &str) -> Result<(), Error> {
        let mapping = store::load_mapping(&self.db, directory_id).await?;
        let cursor = role_follower::Entity::find_by_id(directory_id).one(&self.db).await?;
        match cursor {
            Some(cursor) if cursor.mapping_version == mapping.version => {
                self.catch_up(directory_id, &mapping, cursor).await
            }
            _ => self.decide_everyone(directory_id, &mapping).await,
        }
    }

    /// Reads the log after the follower's position and decides the users
    /// its events touch, a page at a time.
    async fn catch_up(
        &self,
        directory_id: &str,
        mapping: &Mapping,
        mut cursor: role_follower::Model,
    ) -> Result<(), Error> {
        for _ in 0..PAGES_PER_ROUND {
            let request = pb::ListEventsRequest {
                directory_id: directory_id.to_owned(),
                after_sequence: cursor.after_sequence,
                page_size: EVENT_PAGE,
                ..Default::default()
            };
            let page = bounded(async { self.events.clone().list_events(request).await.map_err(Error::events) }).await;
            let events = match page {
                Ok(page) => page.into_inner().events,
                Err(Error::Peer { status, .. })
                    if status.code() == Code::FailedPrecondition
                        && idmesh_api::status::reason(&status).as_deref()
                            == Some(idmesh_api::events::CURSOR_EXPIRED) =>
                {
                    tracing::warn!(%directory_id, "the events after the role follower's position are gone; deciding every user again");
                    return self.decide_everyone(directory_id, mapping).await;
                }
                Err(err) => return Err(err),
            };
            let Some(last) = events.last().map(|event| event.sequence) else {
                return Ok(());
            };
            let Some(user_ids) = self.touched(directory_id, &events).await? else {
                return self.decide_everyone(directory_id, mapping).await;
            };
            let decisions = bounded(self.api.decide_users(directory_id, &user_ids, mapping)).await?;
            let advance = Advance {
                from: &cursor,
                to: last,
            };
            if !bounded(self.apply(directory_id, mapping, decisions, Some(advance))).await? {
                // Another replica moved on meanwhile: its next round goes on.
                return Ok(());
            }
            cursor.after_sequence = last;
        }
        Ok(())
    }

    /// The users whose roles `events` may have changed, or `None` when that
    /// may be any user (a group deleted, or moved in or out of a group).
    async fn touched(&self, directory_id: &str, events: &[pb::Event]) -> Result<Option<Vec<String>>, Error> {
        let mut users: BTreeSet<String> = BTreeSet::new();
        let mut members: BTreeSet<String> = BTreeSet::new();
        for event in events {
            match pb::EventType::try_from(event.r#type) {
                Ok(
                    pb::EventType::UserCreated
                    | pb::EventType::UserUpdated
                    | pb::EventType::UserDeactivated
                    | pb::EventType::UserReactivated
                    | pb::EventType::UserDeleted,
                ) => {
                    users.insert(event.resource_id.clone());
                }
                Ok(pb::EventType::MemberAdded | pb::EventType::MemberRemoved) => {
                    members.insert(event.member_id.clone());
                }
                Ok(pb::EventType::GroupDeleted) => return Ok(None),
                _ => {}
            }
        }
        // A member that is not a user (any more) is a group or a deleted
        // user; only a group's move reaches other users.
        let members: Vec<String> = members.into_iter().filter(|id| !users.contains(id)).collect();
        for id in &members {
            if bounded(self.api.is_group(directory_id, id)).await? {
                return Ok(None);
            }
        }
        users.extend(members);
        Ok(Some(users.into_iter().collect()))
    }

    /// Decides every user of the directory (a page at a time), forgets the
    /// roles of those no longer there, then follows the log from where it
    /// stood before the walk began.
    async fn decide_everyone(&self, directory_id: &str, mapping: &Mapping) -> Result<(), Error> {
        let request = pb::ListEventsRequest {
            directory_id: directory_id.to_owned(),
            page_size: 1,
            descending: true,
            ..Default::default()
        };
        let latest = bounded(async { self.events.clone().list_events(request).await.map_err(Error::events) })
            .await?
            .into_inner()
            .latest_sequence;
        // The row that every apply locks, so that replicas deciding at
        // once take turns; its position is set once every user is decided.
        role_follower::Entity::insert(
            role_follower::Model {
                directory_id: directory_id.to_owned(),
                after_sequence: 0,
                mapping_version: -1,
            }
            .into_active_model(),
        )
        .on_conflict(
            OnConflict::column(role_follower::Column::DirectoryId)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(&self.db)
        .await?;
        let mut seen: HashSet<String> = HashSet::new();
        let mut token = String::new();
        loop {
            let (users, next) = bounded(self.api.user_page(directory_id, MAX_USER_PAGE, token)).await?;
            let decisions: Vec<Decision> = users
                .iter()
                .map(|(user, facts)| Decision::of(user, mapping, facts))
                .collect();
            seen.extend(decisions.iter().map(|decision| decision.user_id.clone()));
            bounded(self.apply(directory_id, mapping, decisions, None)).await?;
            if next.is_empty() {
                break;
            }
            token = next;
        }
        let held: Vec<String> = role_holding::Entity::find()
            .select_only()
            .column(role_holding::Column::UserId)
            .distinct()
            .filter(role_holding::Column::DirectoryId.eq(directory_id))
            .into_tuple()
            .all(&self.db)
            .await?;
        let gone: Vec<Decision> = held
            .into_iter()
            .filter(|user_id| !seen.contains(user_id))
            .map(Decision::gone)
            .collect();
        for chunk in gone.chunks(CHUNK) {
            bounded(self.apply(directory_id, mapping, chunk.to_vec(), None)).await?;
        }
        role_follower::Entity::insert(
            role_follower::Model {
                directory_id: directory_id.to_owned(),
                after_sequence: latest,
                mapping_version: mapping.version,
            }
            .into_active_model(),
        )
        .on_conflict(
            OnConflict::column(role_follower::Column::DirectoryId)
                .update_columns([
                    role_follower::Column::AfterSequence,
                    role_follower::Column::MappingVersion,
                ])
                .to_owned(),
        )
        .exec(&self.db)
        .await?;
        tracing::info!(%directory_id, users = seen.len(), mapping_version = mapping.version, "every user's roles decided");
        Ok(())
    }

    /// Records `decisions`, announces what changed and revokes sessions
    /// where the mapping asks for it, in one transaction, moving the
    /// follower's position as `advance` says. False when `advance` no
    /// longer holds (another replica moved the position): nothing is done.
    async fn apply(
        &self,
        directory_id: &str,
        mapping: &Mapping,
        decisions: Vec<Decision>,
        advance: Option<Advance<'_>>,
    ) -> Result<bool, Error> {
        let txn = idmesh_store::begin_write(&self.db, None).await?;
        let follower = role_follower::Entity::find_by_id(directory_id)
            .lock_exclusive()
            .one(&txn)
            .await?;
        if let Some(Advance { from, to }) = advance {
            if follower.as_ref() != Some(from) {
                return Ok(false);
            }
            role_follower::Entity::update(
                role_follower::Model {
                    after_sequence: to,
                    ..from.clone()
                }
                .into_active_model()
                .reset_all(),
            )
            .exec(&txn)
            .await?;
        }
        let held = holdings(&txn, directory_id, &decisions).await?;
        let now = timestamp::to_proto((self.clock)());
        let mut events = Vec::new();
        let mut gained_rows = Vec::new();
        for decision in &decisions {
            let before = held.get(&decision.user_id).cloned().unwrap_or_default();
            let lost: Vec<&String> = before.difference(&decision.roles).collect();
            let gained: Vec<&String> = decision.roles.difference(&before).collect();
            if !lost.is_empty() {
                role_holding::Entity::delete_many()
                    .filter(role_holding::Column::DirectoryId.eq(directory_id))
                    .filter(role_holding::Column::UserId.eq(&decision.user_id))
                    .filter(role_holding::Column::RoleKey.is_in(lost.iter().map(|role| role.as_str())))
                    .exec(&txn)
                    .await?;
                // A deleted or deactivated user's sessions went with that.
                if mapping.revoke_sessions && decision.active {
                    self.revoke(directory_id, &decision.user_id, &lost).await?;
                }
            }
            for (roles, event_type) in [
                (&lost, pb::EventType::RoleRemoved),
                (&gained, pb::EventType::RoleAssigned),
            ] {
                events.extend(roles.iter().map(|role| pb::Event {
                    directory_id: directory_id.to_owned(),
                    time: Some(now),
                    r#type: event_type.into(),
                    resource_type: "User".to_owned(),
                    resource_id: decision.user_id.clone(),
                    version: decision.version,
                    role: (*role).clone(),
                    ..pb::Event::default()
                }));
            }
            gained_rows.extend(gained.into_iter().map(|role| {
                role_holding::Model {
                    directory_id: directory_id.to_owned(),
                    user_id: decision.user_id.clone(),
                    role_key: role.clone(),
                }
                .into_active_model()
            }));
        }
        for chunk in gained_rows.chunks(CHUNK) {
            role_holding::Entity::insert_many(chunk.to_vec()).exec(&txn).await?;
        }
        let announced = !events.is_empty();
        self.outbox.record(&txn, events).await?;
        txn.commit().await?;
        if announced {
            self.outbox.written();
        }
        Ok(true)
    }

    /// Revokes every session of a user who lost `roles`, as deprovisioning
    /// does.
    async fn revoke(&self, directory_id: &str, user_id: &str, roles: &[&String]) -> Result<(), Error> {
        let reason = format!(
            "role removed: {}",
            roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")
        );
        self.sessions
            .clone()
            .revoke_user_sessions(pb::RevokeUserSessionsRequest {
                directory_id: directory_id.to_owned(),
                user_id: user_id.to_owned(),
                reason,
            })
            .await
            .map_err(Error::sessions)?;
        tracing::info!(%directory_id, %user_id, ?roles, "sessions revoked: roles removed");
        Ok(())
    }
}

/// Runs `work` under [`CALL_TIMEOUT`], which its calls to peers carry as
/// their deadline. Work that overruns it is dropped (a transaction rolls
/// back) and fails with [`Error::Overran`].
async fn bounded<T>(work: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
    let until = tokio::time::Instant::now() + CALL_TIMEOUT;
    tokio::time::timeout_at(until, deadline::within(Some(until), work))
        .await
        .unwrap_or(Err(Error::Overran(CALL_TIMEOUT)))
}

/// Moving the follower's position from what it was read as to `to`.
#[derive(Debug, Clone, Copy)]
struct Advance<'a> {
    from: &'a role_follower::Model,
    to: i64,
}

/// The recorded roles of the decided users.
async fn holdings(
    txn: &DatabaseTransaction,
    directory_id: &str,
    decisions: &[Decision],
) -> Result<HashMap<String, BTreeSet<String>>, Error> {
    let mut held: HashMap<String, BTreeSet<String>> = HashMap::new();
    for chunk in decisions.chunks(CHUNK) {
        let rows = role_holding::Entity::find()
            .filter(role_holding::Column::DirectoryId.eq(directory_id))
            .filter(role_holding::Column::UserId.is_in(chunk.iter().map(|d| d.user_id.as_str())))
            .all(txn)
            .await?;
        for row in rows {
            held.entry(row.user_id).or_default().insert(row.role_key);
        }
    }
    Ok(held)
}
