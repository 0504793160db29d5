//! API keys of a project, for its owner: create (the key is shown once), list, revoke.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::Request;
use ledger_engine::now_micros;
use ledger_engine::timefmt::format_micros;
use serde_json::{json, Value};

use super::account::new_id;
use super::{audit, blocking, owned_project, read_object, session_for};
use crate::app::{App, Ctx};
use crate::auth::keys;
use crate::error::{ApiError, ApiResult};
use crate::http::{self, Resp};
use crate::json;
use crate::meta::{KeyRecord, Scope};

const MAX_NAME_CHARS: usize = 200;

fn scopes_json(scopes: &[Scope]) -> Value {
    Value::Array(scopes.iter().map(|s| json!(s.as_str())).collect())
}

/// `POST /api/v1/projects/{project_id}/keys`
pub async fn create(
    app: &Arc<App>,
    req: Request<Incoming>,
    ctx: &mut Ctx,
    id: &str,
) -> ApiResult<Resp> {
    let account = session_for(app, &req, id)?;
    let project = owned_project(app, &account, id)?;
    let body = read_object(app, req).await?;
    json::only(&body, &["name", "scopes"])?;
    let name = json::req_str(&body, "name")?.trim().to_owned();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(ApiError::invalid_field(format!(
            "name: 1 to {MAX_NAME_CHARS} characters"
        )));
    }
    let bad_scopes =
        || ApiError::invalid_field("scopes: expected a non-empty list of \"ingest\" and \"query\"");
    let scopes = match body.get("scopes") {
        None | Some(Value::Null) => return Err(ApiError::MissingField("scopes: required".into())),
        Some(Value::Array(items)) if !items.is_empty() => {
            let mut scopes = items
                .iter()
                .map(|v| v.as_str().and_then(Scope::parse).ok_or_else(bad_scopes))
                .collect::<ApiResult<Vec<Scope>>>()?;
            scopes.sort();
            scopes.dedup();
            scopes
        }
        Some(_) => return Err(bad_scopes()),
    };
    let key = keys::generate()
        .ok_or_else(|| ApiError::unavailable("the system random source failed", 5))?;
    let rec = KeyRecord {
        id: new_id("key_")?,
        project: project.id,
        name,
        prefix: keys::shown_prefix(&key),
        scopes,
        hash: hex::encode(app.auth.hasher.hash(&key)),
        created_at: now_micros(),
        last_used_at: None,
        revoked_at: None,
    };
    let a = app.clone();
    let stored = rec.clone();
    blocking(move || a.meta.put_key(&stored)).await??;
    if app.tenants.contains(project.id) {
        app.auth.keys.insert(&rec);
    }
    audit(
        app,
        ctx,
        &account,
        "key.create",
        Some(project.id),
        Some(rec.id.clone()),
    )
    .await;
    Ok(http::json(
        201,
        &json!({
            "id": rec.id,
            "name": rec.name,
            "key": key,
            "prefix": rec.prefix,
            "scopes": scopes_json(&rec.scopes),
            "created_at": format_micros(rec.created_at),
        }),
    ))
}

/// `GET /api/v1/projects/{project_id}/keys`
pub async fn list(app: &Arc<App>, req: Request<Incoming>, id: &str) -> ApiResult<Resp> {
    let account = session_for(app, &req, id)?;
    let project = owned_project(app, &account, id)?;
    let a = app.clone();
    let recs = blocking(move || a.meta.project_keys(project.id)).await??;
    let keys: Vec<Value> = recs
        .iter()
        .map(|k| {
            // Uses not yet written to redb are newer than the stored figure.
            let last_used = app
                .auth
                .keys
                .by_id(&k.id)
                .and_then(|c| c.last_used())
                .max(k.last_used_at);
            json!({
                "id": k.id,
                "name": k.name,
                "prefix": k.prefix,
                "scopes": scopes_json(&k.scopes),
                "created_at": format_micros(k.created_at),
                "last_used_at": last_used.map(format_micros),
                "revoked_at": k.revoked_at.map(format_micros),
            })
        })
        .collect();
    Ok(http::json(200, &json!({ "keys": keys })))
}

/// `DELETE /api/v1/projects/{project_id}/keys/{key_id}`: revokes the key. It stays listed
/// with `revoked_at`; the next request made with it is refused.
pub async fn revoke(
    app: &Arc<App>,
    req: Request<Incoming>,
    ctx: &mut Ctx,
    id: &str,
    key_id: &str,
) -> ApiResult<Resp> {
    let account = session_for(app, &req, id)?;
    let project = owned_project(app, &account, id)?;
    let a = app.clone();
    let kid = key_id.to_owned();
    let rec = blocking(move || a.meta.key(&kid))
        .await??
        .filter(|k| k.project == project.id)
        .ok_or_else(|| ApiError::not_found("key"))?;
    // Refuse the key in memory first: from here on, no request passes with it.
    app.auth.keys.remove_id(&rec.id);
    if rec.revoked_at.is_none() {
        let revoked = KeyRecord {
            revoked_at: Some(now_micros()),
            ..rec.clone()
        };
        let a = app.clone();
        blocking(move || a.meta.put_key(&revoked)).await??;
        audit(
            app,
            ctx,
            &account,
            "key.revoke",
            Some(project.id),
            Some(rec.id),
        )
        .await;
    }
    Ok(http::no_content())
}
