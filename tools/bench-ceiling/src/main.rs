//! The ceiling that issue 17 measures the gateway's reads against: an axum
//! server that answers the same two reads as the gateway, each with one
//! indexed select of user-service's `users` table (through the same driver
//! and pool as the services, [`idmesh_store::connect`]), and renders the
//! SCIM user itself. No gRPC hop, no `groups`, no authentication, no
//! filter grammar: what is left of a read when the mesh is taken away.
//!
//!   bench-ceiling --database-url postgres://… --directory D --listen 127.0.0.1:18081
//!   GET /Users/{id}
//!   GET /Users?filter=userName eq "…"

use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use clap::Parser;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, QueryResult, Statement};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Parser)]
struct Args {
    /// user-service's database (PostgreSQL), already loaded.
    #[arg(long)]
    database_url: String,
    /// The directory whose users are read.
    #[arg(long)]
    directory: String,
    #[arg(long, default_value = "127.0.0.1:18081")]
    listen: String,
}

struct Ceiling {
    db: DatabaseConnection,
    directory: String,
}

const COLUMNS: &str = "id, resource, version, created, last_modified";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let db = idmesh_store::connect(&args.database_url)
        .await
        .context("connecting to the database")?;
    let state = Arc::new(Ceiling {
        db,
        directory: args.directory,
    });
    let app = Router::new()
        .route("/Users", get(filtered))
        .route("/Users/{id}", get(by_id))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    println!("listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

/// `GET /Users/{id}`: the user by primary key.
async fn by_id(State(ceiling): State<Arc<Ceiling>>, Path(id): Path<String>) -> Response {
    let sql = format!("SELECT {COLUMNS} FROM users WHERE directory_id = $1 AND id = $2");
    match select(&ceiling, &sql, id).await {
        Ok(mut users) => match users.pop() {
            Some(user) => scim_json(StatusCode::OK, user),
            None => StatusCode::NOT_FOUND.into_response(),
        },
        Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response(),
    }
}

/// `GET /Users?filter=userName eq "…"`: through the unique index on the
/// folded name, as user-service reads it. The value between the quotes is
/// taken as it is (no escapes), which is all the benchmark sends.
async fn filtered(State(ceiling): State<Arc<Ceiling>>, Query(query): Query<Vec<(String, String)>>) -> Response {
    let Some(name) = query
        .iter()
        .find(|(key, _)| key == "filter")
        .and_then(|(_, filter)| filter.split('"').nth(1))
    else {
        return (StatusCode::BAD_REQUEST, "filter=userName eq \"…\" only").into_response();
    };
    let sql = format!("SELECT {COLUMNS} FROM users WHERE directory_id = $1 AND user_name_folded = $2");
    match select(&ceiling, &sql, name.to_lowercase()).await {
        Ok(users) => scim_json(
            StatusCode::OK,
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
                "totalResults": users.len(),
                "startIndex": 1,
                "itemsPerPage": users.len(),
                "Resources": users,
            }),
        ),
        Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response(),
    }
}

/// The users `sql` selects with the directory and `key` bound, rendered.
async fn select(ceiling: &Ceiling, sql: &str, key: String) -> anyhow::Result<Vec<Value>> {
    let statement =
        Statement::from_sql_and_values(DbBackend::Postgres, sql, [ceiling.directory.clone().into(), key.into()]);
    ceiling.db.query_all_raw(statement).await?.iter().map(render).collect()
}

/// A SCIM user from its row: the stored document with `id` and `meta`.
fn render(row: &QueryResult) -> anyhow::Result<Value> {
    let id: String = row.try_get("", "id")?;
    let Value::Object(mut user) = row.try_get::<Value>("", "resource")? else {
        anyhow::bail!("user {id}: the stored document is not an object");
    };
    let version: i64 = row.try_get("", "version")?;
    let created: OffsetDateTime = row.try_get("", "created")?;
    let modified: OffsetDateTime = row.try_get("", "last_modified")?;
    let mut meta = Map::new();
    meta.insert("resourceType".into(), "User".into());
    meta.insert("created".into(), created.format(&Rfc3339)?.into());
    meta.insert("lastModified".into(), modified.format(&Rfc3339)?.into());
    meta.insert("version".into(), format!("W/\"{version}\"").into());
    meta.insert("location".into(), format!("/Users/{id}").into());
    user.insert("id".into(), id.into());
    user.insert("meta".into(), meta.into());
    Ok(Value::Object(user))
}

fn scim_json(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/scim+json")],
        body.to_string(),
    )
        .into_response()
}
