//! Accounts and sessions: register, login, me, and the account's audit log.

use std::sync::Arc;
use std::time::Instant;

use hyper::body::Incoming;
use hyper::Request;
use ledger_engine::now_micros;
use ledger_engine::timefmt::format_micros;
use serde_json::{json, Value};

use super::{audit as write_audit, blocking, read_object, session};
use crate::app::{App, Ctx};
use crate::auth::password;
use crate::error::{ApiError, ApiResult};
use crate::http::{self, int_param, query_pairs, Resp};
use crate::json;
use crate::meta::Account;
use crate::tenants::project_hex;

pub const MIN_PASSWORD_CHARS: usize = 10;
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// Trims an email and checks that it looks like one. It is kept as written (`/auth/me`
/// answers it so); accounts are found by its lower-case form, so `Ana@Example.com` and
/// `ana@example.com` are one account.
fn checked_email(raw: &str) -> ApiResult<String> {
    let e = raw.trim().to_owned();
    let bad =
        || ApiError::invalid_field("email: expected an email address such as ana@example.com");
    if e.len() > 254 || e.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    let (local, domain) = e.split_once('@').ok_or_else(bad)?;
    let labels_ok = domain.split('.').count() >= 2 && domain.split('.').all(|l| !l.is_empty());
    if local.is_empty() || local.len() > 64 || domain.contains('@') || !labels_ok {
        return Err(bad());
    }
    Ok(e)
}

fn session_answer(app: &App, status: u16, account: &str) -> Resp {
    let now = now_micros().div_euclid(1_000_000);
    let (token, exp) = app.auth.jwt.issue(account, now);
    http::json(
        status,
        &json!({
            "account_id": account,
            "token": token,
            "expires_at": format_micros(exp * 1_000_000),
        }),
    )
}

/// `POST /api/v1/auth/register`
pub async fn register(app: &Arc<App>, req: Request<Incoming>, ctx: &mut Ctx) -> ApiResult<Resp> {
    let body = read_object(app, req).await?;
    let email = checked_email(&json::req_str(&body, "email")?)?;
    let pw = json::req_str(&body, "password")?;
    let chars = pw.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(ApiError::invalid_field(format!(
            "password: at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if chars > MAX_PASSWORD_CHARS {
        return Err(ApiError::invalid_field(format!(
            "password: at most {MAX_PASSWORD_CHARS} characters"
        )));
    }
    let taken = || ApiError::Conflict("an account with this email already exists".into());
    let a = app.clone();
    let e = email.clone();
    if blocking(move || a.meta.account_by_email(&e))
        .await??
        .is_some()
    {
        return Err(taken());
    }
    let iterations = app.pbkdf2_iterations;
    let _permit = kdf_permit(app).await?;
    let hash = blocking(move || password::hash(&pw, iterations))
        .await?
        .ok_or_else(|| ApiError::unavailable("the system random source failed", 5))?;
    let account = Account {
        id: new_id("acc_")?,
        email,
        password_hash: hash,
        created_at: now_micros(),
    };
    let a = app.clone();
    let rec = account.clone();
    if !blocking(move || a.meta.create_account(&rec)).await?? {
        return Err(taken());
    }
    write_audit(app, ctx, &account.id, "register", None, None).await;
    Ok(session_answer(app, 201, &account.id))
}

/// `POST /api/v1/auth/login`
pub async fn login(app: &Arc<App>, req: Request<Incoming>, ctx: &mut Ctx) -> ApiResult<Resp> {
    let body = read_object(app, req).await?;
    let email = json::req_str(&body, "email")?.trim().to_lowercase();
    let pw = json::req_str(&body, "password")?;
    let (by_email, by_addr) = (format!("email:{email}"), format!("addr:{}", ctx.peer.ip()));
    let subjects = [
        (by_email.as_str(), app.config.login_max_failures),
        (by_addr.as_str(), app.config.login_max_failures_per_address),
    ];
    if let Err(wait) = app.throttle.check(&subjects, Instant::now()) {
        return Err(ApiError::RateLimited {
            message: "too many failed logins; try again later".into(),
            retry_after: wait,
        });
    }
    let a = app.clone();
    let iterations = app.pbkdf2_iterations;
    let permit = kdf_permit(app).await?;
    let outcome = blocking(move || -> ApiResult<Login> {
        Ok(match a.meta.account_by_email(&email)? {
            Some(acc) if password::verify(&pw, &acc.password_hash) => Login::Ok(acc.id),
            Some(acc) => Login::WrongPassword(acc.id),
            None => {
                password::verify_dummy(&pw, iterations);
                Login::Unknown
            }
        })
    })
    .await??;
    drop(permit);
    match outcome {
        Login::Ok(account) => {
            app.throttle.clear(&by_email);
            write_audit(app, ctx, &account, "login", None, None).await;
            Ok(session_answer(app, 200, &account))
        }
        failed => {
            app.throttle.record_failure(&subjects, Instant::now());
            if let Login::WrongPassword(account) = failed {
                // Written in the background so the answer takes as long as for an unknown
                // email: its latency must not confirm that the account exists.
                let (a, peer) = (app.clone(), ctx.peer);
                tokio::spawn(async move {
                    let ctx = Ctx {
                        peer,
                        request_id: String::new(),
                        headers: Default::default(),
                    };
                    write_audit(&a, &ctx, &account, "login_failed", None, None).await;
                });
            }
            Err(ApiError::Unauthenticated)
        }
    }
}

enum Login {
    Ok(String),
    WrongPassword(String),
    Unknown,
}

/// `GET /api/v1/auth/me`
pub async fn me(app: &Arc<App>, req: Request<Incoming>) -> ApiResult<Resp> {
    let account = session(app, &req)?;
    let a = app.clone();
    let acc = blocking(move || a.meta.account(&account))
        .await??
        .ok_or(ApiError::Unauthenticated)?;
    Ok(http::json(
        200,
        &json!({
            "account_id": acc.id,
            "email": acc.email,
            "created_at": format_micros(acc.created_at),
        }),
    ))
}

/// `GET /api/v1/audit?limit=&cursor=`
pub async fn audit(app: &Arc<App>, req: Request<Incoming>) -> ApiResult<Resp> {
    let account = session(app, &req)?;
    let mut limit = 100usize;
    let mut before = None;
    for (k, v) in query_pairs(req.uri().query())? {
        match k.as_str() {
            "limit" => limit = int_param("limit", &v, 1, 1000)? as usize,
            "cursor" if v.is_empty() => {}
            "cursor" => {
                before = Some(crate::tenants::hex_u64(&v).ok_or_else(|| {
                    ApiError::InvalidQuery("cursor: not a cursor from this route".into())
                })?)
            }
            _ => return Err(ApiError::InvalidQuery(format!("{k}: unknown parameter"))),
        }
    }
    let a = app.clone();
    let page = blocking(move || a.meta.audit_page(&account, limit, before)).await??;
    let events: Vec<Value> = page
        .events
        .iter()
        .map(|e| {
            json!({
                "at": format_micros(e.at),
                "action": e.action,
                "project_id": e.project_id.map(project_hex),
                "key_id": e.key_id,
                "source": e.source,
            })
        })
        .collect();
    Ok(http::json(
        200,
        &json!({"events": events, "next_cursor": page.next.map(|s| format!("{s:016x}"))}),
    ))
}

async fn kdf_permit(app: &App) -> ApiResult<tokio::sync::SemaphorePermit<'_>> {
    app.kdf
        .acquire()
        .await
        .map_err(|_| ApiError::unavailable("the server is shutting down", 5))
}

/// A fresh opaque id: `prefix` + 16 random hex digits.
pub(crate) fn new_id(prefix: &str) -> ApiResult<String> {
    let mut b = [0u8; 8];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
        .map_err(|_| ApiError::unavailable("the system random source failed", 5))?;
    Ok(format!("{prefix}{}", hex::encode(b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_checked_and_kept_as_written() {
        assert_eq!(
            checked_email(" Ana@Example.COM ").unwrap(),
            "Ana@Example.COM"
        );
        for bad in [
            "",
            "ana",
            "@x.io",
            "ana@",
            "ana@x",
            "ana@@x.io",
            "a b@x.io",
            "ana@x..io",
        ] {
            assert!(checked_email(bad).is_err(), "{bad}");
        }
    }
}
