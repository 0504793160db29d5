//! Runs deletions of logs in the background, one at a time, and resumes those a restart
//! interrupted. The engine does the work (`Engine::delete_logs`, crash-safe and exact);
//! this module keeps the request's state in `meta.redb` up to date.

use std::sync::Arc;

use ledger_engine::search::eval;
use ledger_engine::{now_micros, Deletion, EngineError, LogRecord};

use crate::app::App;
use crate::meta::DeletionRecord;
use crate::routes::deletions::conditions;

/// Starts running a deletion in the background.
pub fn start(app: Arc<App>, rec: DeletionRecord) {
    tokio::spawn(run(app, rec));
}

/// Resumes every deletion a stop or crash left running (called once at start).
pub fn resume(app: &Arc<App>) {
    match app.meta.running_deletions() {
        Ok(list) => {
            for rec in list {
                tracing::info!(
                    deletion = rec.id,
                    project = rec.project,
                    "resuming a deletion"
                );
                start(app.clone(), rec);
            }
        }
        Err(e) => tracing::error!(error = %e, "could not list the deletions to resume"),
    }
}

/// Logs a deletion removed: final once it is finished, the engine's count so far before.
pub fn count(app: &App, rec: &DeletionRecord) -> u64 {
    if rec.state == "running" {
        app.engine.erased(rec.id).unwrap_or(0)
    } else {
        rec.deleted
    }
}

async fn run(app: Arc<App>, mut rec: DeletionRecord) {
    // One at a time: a deletion reads and rewrites a project's segments, so two would only
    // compete for the same disk and cores.
    let Ok(_turn) = app.deletion_turn.acquire().await else {
        return;
    };
    let a = app.clone();
    let r = rec.clone();
    let outcome = tokio::task::spawn_blocking(move || execute(&a, &r)).await;
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => Err(Outcome::Failed(format!("the deletion task failed: {e}"))),
    };
    match outcome {
        Ok(n) => {
            rec.state = "done".into();
            rec.deleted = n;
            rec.finished_at = Some(now_micros());
            tracing::info!(
                deletion = rec.id,
                project = rec.project,
                deleted = n,
                "deletion done"
            );
        }
        // Stopping: it stays `running` and resumes at the next start.
        Err(Outcome::Interrupted) => return,
        Err(Outcome::Failed(why)) => {
            tracing::error!(deletion = rec.id, project = rec.project, error = %why, "deletion failed");
            rec.state = "failed".into();
            rec.deleted = app.engine.erased(rec.id).unwrap_or(0);
            rec.finished_at = Some(now_micros());
            rec.error = Some(why);
        }
    }
    let a = app.clone();
    let saved = tokio::task::spawn_blocking(move || a.meta.put_deletion(&rec)).await;
    if !matches!(saved, Ok(Ok(()))) {
        tracing::error!("could not record the end of a deletion; it will run again at start");
    }
}

enum Outcome {
    Interrupted,
    Failed(String),
}

fn execute(app: &App, rec: &DeletionRecord) -> Result<u64, Outcome> {
    if !app.tenants.contains(rec.project) {
        return Err(Outcome::Failed("the project was deleted".into()));
    }
    let c = conditions(&rec.conditions)
        .map_err(|e| Outcome::Failed(format!("the stored conditions no longer parse: {e:?}")))?;
    let matches =
        |r: &LogRecord| c.filter.matches(r) && c.expr.as_ref().is_none_or(|e| eval::matches(e, r));
    let d = Deletion {
        id: rec.id,
        through: rec.through,
        start: c.filter.start,
        end: c.filter.end,
        matches: &matches,
    };
    match app.engine.delete_logs(rec.project, &d) {
        Ok(n) => Ok(n),
        Err(EngineError::Closed) => Err(Outcome::Interrupted),
        Err(_) if *app.stopping.borrow() => Err(Outcome::Interrupted),
        Err(e) => Err(Outcome::Failed(e.to_string())),
    }
}
