//! Filters pushed to SQL mean what they mean in memory.
//!
//! The same random users are stored in PostgreSQL and in SQLite through the
//! real service; random filters (every operator, sub-attributes, value
//! paths, URN-qualified extension attributes, `not`, mixed-case names and
//! values in several scripts) then select users in both databases, and each
//! answer must equal what `scim::filter::matches` says about the stored
//! resources. Other tests check that an indexed `userName eq` in a
//! directory of 100,000 users reads the index rather than scanning, and
//! that its direct read answers as the list pipeline does.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use idmesh_api::timestamp;
use idmesh_proto::v1::user_service_server::UserService;
use idmesh_proto::v1::{CreateUserRequest, ListUsersRequest, ListUsersResponse, PageRequest, User};
use idmesh_testkit::{Backend, ScratchDatabase};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use scim::filter::{CompValue, CompareOp, Filter};
use scim::meta::Meta;
use scim::path::AttrPath;
use scim::schema::USER_RESOURCE;
use sea_orm::{ConnectionTrait, DatabaseConnection, QueryTrait, Statement};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::macros::datetime;
use tonic::Request;

use crate::UserApi;
use crate::stored::{FIND, FIND_BY_USER_NAME};

/// A request from a caller with every scope, as the auth layer would pass
/// it on.
fn admin<T>(message: T) -> Request<T> {
    let caller = idmesh_runtime::auth::Principal::with_every_scope("test", "test");
    idmesh_runtime::auth::with_caller(Request::new(message), caller)
}
use crate::revocation::Revocations;

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// When the first test user was created; each next one 1.25 s later, so
/// that stored times have fractions of a second of different lengths.
const EPOCH: OffsetDateTime = datetime!(2026-01-01 00:00:00 UTC);
const USERS: usize = 60;
/// Issue 3 asks for at least 2,000 random filters in CI.
const FILTER_CASES: u32 = 2_000;
/// Random filters in Entra ID's `emails[type eq "work"].value eq "x"` form.
const ENTRA_FILTER_CASES: u32 = 300;

/// A user-service on `url` whose clock starts at [`EPOCH`] and advances
/// 1.25 s per reading, so both databases get the same timestamps.
async fn service(url: &str) -> (UserApi, DatabaseConnection) {
    let db = idmesh_store::connect(url).await.expect("connect");
    idmesh_store::migrate::<crate::migration::Migrator>(&db)
        .await
        .expect("migrate");
    let tick = Arc::new(AtomicI64::new(0));
    let clock: idmesh_runtime::clock::Clock =
        Arc::new(move || EPOCH + time::Duration::milliseconds(1_250 * tick.fetch_add(1, Ordering::SeqCst)));
    // No user is deactivated or deleted here, so neither session-service
    // nor group-service is ever called.
    let nowhere = || {
        let credential = idmesh_runtime::auth::Credential::new("idmk_unused").expect("a key");
        idmesh_runtime::grpc::authed_channel("127.0.0.1:9", &credential).expect("an address")
    };
    let revocations = Revocations::new(db.clone(), nowhere(), nowhere(), clock.clone());
    (UserApi::new(db.clone(), clock, revocations), db)
}

/// Strings from a small pool, so that filters often hit: mixed case, a
/// few scripts whose case folding SQL gets wrong, and LIKE's wildcards.
const WORDS: &[&str] = &[
    "ann", "Ann", "ANN", "bob", "Émile", "émile", "ÉMILE", "straße", "STRASSE", "zoë", "Zoë", "İpek", "r&d", "R&D",
    "sales", "50%_off", "a_b", "work", "Work", "home", "other", "ext-1", "EXT-1", "",
];

fn word() -> impl Strategy<Value = String> {
    prop::sample::select(WORDS).prop_map(str::to_owned)
}

fn email() -> impl Strategy<Value = Value> {
    (
        word(),
        prop::sample::select(&["example.com", "Example.ORG"][..]),
        word(),
    )
        .prop_map(|(local, domain, kind)| json!({"value": format!("{local}@{domain}"), "type": kind}))
}

fn user(index: usize) -> impl Strategy<Value = Value> {
    let emails = (
        prop::collection::vec(email(), 0..3),
        any::<prop::sample::Index>(),
        any::<bool>(),
    );
    let name = (prop::option::of(word()), prop::option::of(word()));
    let enterprise = prop::option::of((prop::option::of(word()), prop::option::of(word())));
    (
        word(),
        prop::option::of(word()),
        prop::option::of(word()),
        any::<bool>(),
        name,
        emails,
        prop::collection::vec(word(), 0..2),
        enterprise,
    )
        .prop_map(
            move |(
                stem,
                display_name,
                title,
                active,
                (given, family),
                (mut emails, primary, has_primary),
                phones,
                ext,
            )| {
                if has_primary && !emails.is_empty() {
                    let at = primary.index(emails.len());
                    emails[at]["primary"] = Value::Bool(true);
                }
                let mut doc = json!({
                    "userName": format!("{stem}{index}@example.com"),
                    "active": active,
                    "emails": emails,
                    "phoneNumbers": phones.iter().map(|p| json!({"value": p, "type": "work"})).collect::<Vec<_>>(),
                });
                let mut set = |key: &str, value: Option<Value>| {
                    if let Some(value) = value {
                        doc[key] = value;
                    }
                };
                set("displayName", display_name.map(Value::from));
                set("title", title.map(Value::from));
                set(
                    "externalId",
                    (!index.is_multiple_of(3)).then(|| Value::from(format!("ext-{}", index % 7))),
                );
                let mut name = serde_json::Map::new();
                name.extend(given.map(|g| ("givenName".to_owned(), Value::from(g))));
                name.extend(family.map(|f| ("familyName".to_owned(), Value::from(f))));
                set("name", (!name.is_empty()).then_some(Value::Object(name)));
                if let Some((department, manager)) = ext {
                    let mut extension = serde_json::Map::new();
                    extension.extend(department.map(|d| ("department".to_owned(), Value::from(d))));
                    extension.extend(manager.map(|m| ("manager".to_owned(), json!({"value": m}))));
                    set(ENTERPRISE, Some(Value::Object(extension)));
                }
                doc
            },
        )
}

/// A path written in a random case: attribute names match in any case.
fn path(text: &'static str) -> impl Strategy<Value = AttrPath> {
    any::<bool>().prop_map(move |upper| {
        let written = if upper && !text.starts_with("urn:") {
            text.to_uppercase()
        } else {
            text.to_owned()
        };
        AttrPath::parse(&written).expect("a valid path")
    })
}

fn string_op() -> impl Strategy<Value = CompareOp> {
    prop::sample::select(&CompareOp::ALL[..])
}

fn text_value() -> impl Strategy<Value = CompValue> {
    prop_oneof![
        8 => word().prop_map(CompValue::Str),
        2 => prop::sample::select(&["@example.com", "@EXAMPLE.org", "É", "é", "ss", "_", "%", "0@"][..])
            .prop_map(|s| CompValue::Str(s.to_owned())),
    ]
}

const STRING_PATHS: &[&str] = &[
    "userName",
    "displayName",
    "title",
    "externalId",
    "name.givenName",
    "name.familyName",
    "emails",
    "emails.value",
    "emails.type",
    "phoneNumbers.value",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
];

const PRESENT_PATHS: &[&str] = &[
    "userName",
    "displayName",
    "title",
    "externalId",
    "name",
    "name.givenName",
    "emails",
    "emails.primary",
    "phoneNumbers",
    "active",
    "meta.created",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
];

/// An instant near the users' creation times, in a random UTC offset.
fn instant() -> impl Strategy<Value = CompValue> {
    (
        0..5 * (USERS as i64 + 2),
        prop::sample::select(&["Z", "+02:00", "-05:30"][..]),
    )
        .prop_map(|(quarter, offset)| {
            let at = EPOCH + time::Duration::milliseconds(250 * quarter);
            let zone = match offset {
                "Z" => time::UtcOffset::UTC,
                "+02:00" => time::macros::offset!(+2),
                _ => time::macros::offset!(-5:30),
            };
            let local = at.to_offset(zone);
            let text = local
                .format(&time::format_description::well_known::Rfc3339)
                .expect("formattable");
            CompValue::Str(text)
        })
}

/// A filter on one element of `emails` or `phoneNumbers`, as inside
/// `emails[...]`.
fn element_filter() -> impl Strategy<Value = Filter> {
    let element = prop_oneof![
        (
            prop::sample::select(&["value", "type", "display"][..]).prop_flat_map(path),
            string_op(),
            text_value()
        )
            .prop_map(|(path, op, value)| Filter::Compare { path, op, value }),
        any::<bool>().prop_map(|b| Filter::Compare {
            path: AttrPath::parse("primary").expect("path"),
            op: CompareOp::Eq,
            value: CompValue::Bool(b),
        }),
        prop::sample::select(&["value", "type", "primary"][..])
            .prop_flat_map(path)
            .prop_map(Filter::Present),
    ];
    element.prop_recursive(2, 6, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(l, r)| Filter::And(Box::new(l), Box::new(r))),
            (inner.clone(), inner.clone()).prop_map(|(l, r)| Filter::Or(Box::new(l), Box::new(r))),
            inner.prop_map(|f| Filter::Not(Box::new(f))),
        ]
    })
}

/// Microsoft Entra ID's `emails[type eq "work"].value eq "x"`: a value
/// filter then a sub-attribute compared, which filters read as both on the
/// same element. As text, since its AST prints in the bracketed form.
fn sub_attribute_after_value_filter() -> impl Strategy<Value = String> {
    (
        prop::sample::select(&["emails", "phoneNumbers"][..]),
        element_filter(),
        prop::sample::select(&["value", "type", "display"][..]),
        prop_oneof![
            string_op().prop_flat_map(|op| text_value().prop_map(move |value| format!("{op} {value}"))),
            Just("pr".to_owned()),
        ],
    )
        .prop_map(|(attr, inner, sub, test)| format!("{attr}[{inner}].{sub} {test}"))
}

fn leaf() -> impl Strategy<Value = Filter> {
    let string_compare = (
        prop::sample::select(STRING_PATHS).prop_flat_map(path),
        string_op(),
        text_value(),
    )
        .prop_map(|(path, op, value)| Filter::Compare { path, op, value });
    let null_compare = (
        prop::sample::select(STRING_PATHS).prop_flat_map(path),
        prop::sample::select(&[CompareOp::Eq, CompareOp::Ne][..]),
    )
        .prop_map(|(path, op)| Filter::Compare {
            path,
            op,
            value: CompValue::Null,
        });
    let boolean_compare = (
        prop::sample::select(&["active", "emails.primary"][..]).prop_flat_map(path),
        prop::sample::select(&[CompareOp::Eq, CompareOp::Ne][..]),
        prop_oneof![
            any::<bool>().prop_map(CompValue::Bool),
            prop::sample::select(&["True", "false"][..]).prop_map(|s| CompValue::Str(s.to_owned())),
        ],
    )
        .prop_map(|(path, op, value)| Filter::Compare { path, op, value });
    let time_compare = (
        prop::sample::select(&["meta.created", "meta.lastModified"][..]).prop_flat_map(path),
        prop::sample::select(
            &[
                CompareOp::Eq,
                CompareOp::Ne,
                CompareOp::Gt,
                CompareOp::Ge,
                CompareOp::Lt,
                CompareOp::Le,
            ][..],
        ),
        instant(),
    )
        .prop_map(|(path, op, value)| Filter::Compare { path, op, value });
    let present = prop::sample::select(PRESENT_PATHS)
        .prop_flat_map(path)
        .prop_map(Filter::Present);
    let value_path = (
        prop::sample::select(&["emails", "phoneNumbers"][..]).prop_flat_map(path),
        element_filter(),
    )
        .prop_map(|(path, filter)| Filter::ValuePath {
            path,
            filter: Box::new(filter),
        });
    prop_oneof![
        6 => string_compare,
        1 => null_compare,
        2 => boolean_compare,
        2 => time_compare,
        2 => present,
        3 => value_path,
    ]
}

fn filter() -> impl Strategy<Value = Filter> {
    leaf().prop_recursive(4, 12, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(l, r)| Filter::And(Box::new(l), Box::new(r))),
            (inner.clone(), inner.clone()).prop_map(|(l, r)| Filter::Or(Box::new(l), Box::new(r))),
            inner.prop_map(|f| Filter::Not(Box::new(f))),
        ]
    })
}

/// A stored user as a client sees it: what the in-memory evaluator reads.
fn rendered(user: &User) -> Value {
    let meta = user.meta.unwrap_or_default();
    let at = |t: Option<prost_types::Timestamp>| timestamp::from_proto(&t.unwrap_or_default()).expect("a timestamp");
    let doc = idmesh_api::document::parse(&user.resource_json).expect("a document");
    scim::meta::render(
        &doc,
        &user.id,
        &Meta {
            resource_type: "User",
            created: at(meta.created),
            last_modified: at(meta.last_modified),
            version: meta.version,
            location: String::new(),
        },
    )
}

struct Stored {
    api: UserApi,
    directory_id: String,
    /// Rendered resources, by userName.
    users: Vec<(String, Value)>,
}

impl Stored {
    async fn create(api: UserApi, bodies: &[Value]) -> Stored {
        let directory_id = uuid::Uuid::now_v7().to_string();
        let mut users = Vec::new();
        for body in bodies {
            let doc = body.as_object().expect("users are objects");
            let user = api
                .create_user(admin(CreateUserRequest {
                    directory_id: directory_id.clone(),
                    resource_json: idmesh_api::document::to_json(doc),
                }))
                .await
                .expect("create user")
                .into_inner();
            users.push((user.user_name.clone(), rendered(&user)));
        }
        Stored {
            api,
            directory_id,
            users,
        }
    }

    async fn select(&self, filter: &str) -> Result<BTreeSet<String>, tonic::Status> {
        let listed = self
            .api
            .list_users(admin(ListUsersRequest {
                directory_id: self.directory_id.clone(),
                filter: filter.to_owned(),
                page: Some(PageRequest {
                    start_index: 1,
                    count: i32::try_from(USERS).expect("small"),
                    cursor: None,
                }),
                sort: None,
            }))
            .await?
            .into_inner();
        assert_eq!(
            usize::try_from(listed.total_results).expect("count"),
            listed.users.len()
        );
        Ok(listed.users.into_iter().map(|u| u.user_name).collect())
    }

    fn expected(&self, filter: &Filter) -> BTreeSet<String> {
        self.users
            .iter()
            .filter(|(_, doc)| scim::filter::matches(filter, doc, &USER_RESOURCE))
            .map(|(name, _)| name.clone())
            .collect()
    }
}

#[test]
fn postgres_sqlite_and_memory_select_the_same_users() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mut runner = TestRunner::deterministic();
    let bodies: Vec<Value> = (0..USERS)
        .map(|i| user(i).new_tree(&mut runner).expect("a user").current())
        .collect();
    let (postgres_database, sqlite_database) = (
        ScratchDatabase::new(Backend::Postgres),
        ScratchDatabase::new(Backend::Sqlite),
    );
    let (postgres, sqlite) = rt.block_on(async {
        let postgres = Stored::create(service(postgres_database.url()).await.0, &bodies).await;
        let sqlite = Stored::create(service(sqlite_database.url()).await.0, &bodies).await;
        (postgres, sqlite)
    });

    let mut runner = TestRunner::new(Config {
        cases: FILTER_CASES,
        failure_persistence: None,
        ..Config::default()
    });
    let outcome = runner.run(&filter(), |filter| {
        let text = filter.to_string();
        let reparsed = scim::filter::parse(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e:?}")))?;
        prop_assert_eq!(&reparsed, &filter, "{} does not parse back", text);
        for (backend, stored) in [("PostgreSQL", &postgres), ("SQLite", &sqlite)] {
            let selected = rt
                .block_on(stored.select(&text))
                .map_err(|status| TestCaseError::fail(format!("{backend} rejects {text}: {status:?}")))?;
            prop_assert_eq!(
                &selected,
                &stored.expected(&filter),
                "{} disagrees with memory on {}",
                backend,
                text
            );
        }
        Ok(())
    });
    if let Err(failure) = outcome {
        panic!(
            "{failure}\nusers: {}",
            serde_json::to_string_pretty(&bodies).unwrap_or_default()
        );
    }

    let mut runner = TestRunner::new(Config {
        cases: ENTRA_FILTER_CASES,
        failure_persistence: None,
        ..Config::default()
    });
    let outcome = runner.run(&sub_attribute_after_value_filter(), |text| {
        let filter = scim::filter::parse(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e:?}")))?;
        for (backend, stored) in [("PostgreSQL", &postgres), ("SQLite", &sqlite)] {
            let selected = rt
                .block_on(stored.select(&text))
                .map_err(|status| TestCaseError::fail(format!("{backend} rejects {text}: {status:?}")))?;
            prop_assert_eq!(
                &selected,
                &stored.expected(&filter),
                "{} disagrees with memory on {}",
                backend,
                text
            );
        }
        Ok(())
    });
    if let Err(failure) = outcome {
        panic!(
            "{failure}\nusers: {}",
            serde_json::to_string_pretty(&bodies).unwrap_or_default()
        );
    }
}

/// What the database plans for `filter` among 100,000 users.
async fn plan_for(api: &UserApi, db: &impl ConnectionTrait, directory_id: &str, filter: &str) -> String {
    let filter = crate::service::parse_filter(filter).expect("a valid filter");
    let query = api
        .matching(directory_id, filter.as_ref())
        .expect("a valid filter")
        .build(db.get_database_backend());
    plan_of(db, &query.sql, query.values.map(|v| v.0).unwrap_or_default()).await
}

/// What the database plans for `sql` with `values`.
async fn plan_of(db: &impl ConnectionTrait, sql: &str, values: Vec<sea_orm::Value>) -> String {
    let backend = db.get_database_backend();
    let explain = match backend {
        sea_orm::DbBackend::Postgres => "EXPLAIN",
        _ => "EXPLAIN QUERY PLAN",
    };
    let statement = Statement::from_sql_and_values(backend, format!("{explain} {sql}"), values);
    let rows = db.query_all_raw(statement).await.expect("explain");
    rows.iter()
        .map(|row| {
            let column = match backend {
                sea_orm::DbBackend::Postgres => "QUERY PLAN",
                _ => "detail",
            };
            row.try_get::<String>("", column).expect("a plan line")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// What the database plans for the direct read of a lookup by `userName`.
async fn plan_of_lookup(db: &impl ConnectionTrait, directory_id: &str) -> String {
    let sql = match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => FIND_BY_USER_NAME.postgres,
        _ => FIND_BY_USER_NAME.sqlite,
    };
    let values = vec![directory_id.into(), "user77777@example.com".into()];
    plan_of(db, sql, values).await
}

const USER_NAME_EQ: &str = r#"userName eq "User77777@Example.com""#;

/// 100,000 users in one directory, written by the database itself.
const HUNDRED_THOUSAND_USERS: &str = "INSERT INTO users (id, directory_id, user_name, user_name_folded, external_id, active, \
     display_name, resource, resource_folded, password_hash, version, created, last_modified) \
     SELECT 'id-' || g, $DIR, 'User' || g || '@Example.com', 'user' || g || '@example.com', NULL, TRUE, NULL, \
     $DOC, $DOC, NULL, 1, $NOW, $NOW FROM $SERIES";

async fn fill(db: &impl ConnectionTrait, directory_id: &str) {
    let backend = db.get_database_backend();
    let sql = match backend {
        sea_orm::DbBackend::Postgres => HUNDRED_THOUSAND_USERS
            .replace("$DOC", "'{}'::jsonb")
            .replace("$NOW", "now()")
            .replace("$SERIES", "generate_series(1, 100000) AS g"),
        _ => format!(
            "WITH RECURSIVE series(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM series WHERE g < 100000) {}",
            HUNDRED_THOUSAND_USERS
                .replace("$DOC", "'{}'")
                .replace("$NOW", "'2026-01-01 00:00:00+00:00'")
                .replace("$SERIES", "series")
        ),
    }
    .replace("$DIR", &format!("'{directory_id}'"));
    db.execute_unprepared(&sql).await.expect("insert 100,000 users");
    db.execute_unprepared("ANALYZE users").await.expect("analyze");
}

#[tokio::test]
async fn user_name_eq_reads_the_index_among_100_000_users_on_postgres() {
    let database = ScratchDatabase::new(Backend::Postgres);
    let (api, db) = service(database.url()).await;
    let directory_id = uuid::Uuid::now_v7().to_string();
    fill(&db, &directory_id).await;
    for plan in [
        plan_for(&api, &db, &directory_id, USER_NAME_EQ).await,
        plan_of_lookup(&db, &directory_id).await,
    ] {
        assert!(plan.contains("users_unique_user_name"), "{plan}");
        assert!(!plan.contains("Seq Scan"), "{plan}");
    }
}

#[tokio::test]
async fn user_name_eq_reads_the_index_among_100_000_users_on_sqlite() {
    let database = ScratchDatabase::new(Backend::Sqlite);
    let (api, db) = service(database.url()).await;
    let directory_id = uuid::Uuid::now_v7().to_string();
    fill(&db, &directory_id).await;
    for plan in [
        plan_for(&api, &db, &directory_id, USER_NAME_EQ).await,
        plan_of_lookup(&db, &directory_id).await,
    ] {
        assert!(plan.contains("USING INDEX users_unique_user_name"), "{plan}");
    }
}

#[tokio::test]
async fn user_name_sw_reads_a_range_of_the_index_among_100_000_users_on_sqlite() {
    // SQLite plans `LIKE ?` without the bound pattern (idmesh_store::connect),
    // so `sw` reaches the index through the range beside its LIKE.
    let database = ScratchDatabase::new(Backend::Sqlite);
    let (api, db) = service(database.url()).await;
    let directory_id = uuid::Uuid::now_v7().to_string();
    fill(&db, &directory_id).await;
    let plan = plan_for(&api, &db, &directory_id, r#"userName sw "User7777""#).await;
    assert!(
        plan.contains(
            "USING INDEX users_unique_user_name (directory_id=? AND user_name_folded>? AND user_name_folded<?)"
        ),
        "{plan}"
    );
}

/// The page of `stored`'s directory that `filter` selects by index.
async fn listed(stored: &Stored, filter: &str, start_index: i64, count: i32) -> ListUsersResponse {
    stored
        .api
        .list_users(admin(ListUsersRequest {
            directory_id: stored.directory_id.clone(),
            filter: filter.to_owned(),
            page: Some(PageRequest {
                start_index,
                count,
                cursor: None,
            }),
            sort: None,
        }))
        .await
        .expect("a list")
        .into_inner()
}

/// A lookup by `userName eq`, which reads the unique index straight
/// through sqlx, answers every page by index as the list pipeline answers
/// the same lookup (made to take the pipeline by a redundant `userName pr`).
#[tokio::test]
async fn a_lookup_by_user_name_answers_as_the_list_pipeline_does() {
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let database = ScratchDatabase::new(backend);
        let (api, _) = service(database.url()).await;
        let user = |user_name: &str| json!({"userName": user_name, "emails": [{"value": user_name, "primary": true}]});
        let stored = Stored::create(api.clone(), &[user("Émile@Example.com"), user("ann@example.com")]).await;
        // Another directory's Émile must not be found.
        Stored::create(api, &[user("emile@example.com"), user("ÉMILE@example.org")]).await;

        let found = listed(&stored, r#"userName eq "émile@EXAMPLE.com""#, 1, 100).await;
        assert_eq!(
            (found.total_results, found.users.len()),
            (1, 1),
            "{backend:?}: {found:?}"
        );
        assert_eq!(found.users[0].user_name, "Émile@Example.com");

        for filter in [
            r#"userName eq "émile@EXAMPLE.com""#,
            r#"USERNAME eq "ÉMILE@EXAMPLE.COM""#,
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "Émile@Example.com""#,
            r#"userName eq "ANN@example.com""#,
            r#"userName eq "émile@example.org""#,
            r#"userName eq "nobody@example.com""#,
        ] {
            for (start_index, count) in [(1, 100), (0, 1), (-2, 1), (1, 0), (1, -1), (2, 10)] {
                let lookup = listed(&stored, filter, start_index, count).await;
                let pipeline = listed(&stored, &format!("{filter} and userName pr"), start_index, count).await;
                assert_eq!(
                    lookup, pipeline,
                    "{backend:?}: {filter}, startIndex {start_index}, count {count}"
                );
            }
        }
    }
}

/// The read of one user by id runs on the plan-cached pool
/// (`idmesh_store::connect_plan_cached`), where PostgreSQL may keep the
/// generic plan it makes after five executions for the connection's
/// life. Made on a table that is empty and was never analysed, as in a
/// new deployment, that plan must still read one row by its primary key.
/// (The lookup by userName stays on custom plans: its generic plan there
/// walks the directory's index and filters on the name.)
#[tokio::test]
async fn a_read_by_id_keeps_its_index_plan_made_on_an_empty_table_on_postgres() {
    let database = ScratchDatabase::new(Backend::Postgres);
    let (_, db) = service(database.url()).await;
    let plan = idmesh_testkit::postgres_generic_plan(&db, FIND.postgres, &["u1"]).await;
    assert!(plan.contains("using users_pkey"), "{plan}");
    assert!(
        !plan.contains("Filter") && !plan.contains("Seq Scan"),
        "the condition is the index's:\n{plan}"
    );
}
