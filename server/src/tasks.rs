//! Background work: retention, writing key use to redb, pruning login throttling.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ledger_engine::now_micros;
use tokio::sync::watch;

use crate::app::App;

const KEY_USE_FLUSH: Duration = Duration::from_secs(10);
const THROTTLE_PRUNE: Duration = Duration::from_secs(60);

/// Starts every background task; each stops when `stop` turns true.
pub fn spawn(app: &Arc<App>, stop: &watch::Receiver<bool>) -> Vec<tokio::task::JoinHandle<()>> {
    if app.config.role == crate::config::Role::Reader {
        // A reader changes nothing: retention and key use are the writer's (it publishes
        // their effects with its next manifest).
        return vec![every(app, stop, THROTTLE_PRUNE, |app| {
            app.throttle.prune(Instant::now())
        })];
    }
    vec![
        every(app, stop, app.config.retention_interval, retention),
        every(app, stop, KEY_USE_FLUSH, flush_key_use),
        every(app, stop, THROTTLE_PRUNE, |app| {
            app.throttle.prune(Instant::now())
        }),
    ]
}

fn every(
    app: &Arc<App>,
    stop: &watch::Receiver<bool>,
    period: Duration,
    work: fn(&App),
) -> tokio::task::JoinHandle<()> {
    let app = app.clone();
    let mut stop = stop.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = async { stop.wait_for(|s| *s).await.is_ok() } => return,
            }
            let a = app.clone();
            if let Err(e) = tokio::task::spawn_blocking(move || work(&a)).await {
                tracing::error!(error = %e, "background task failed");
            }
        }
    })
}

/// Drops each project's segments that fell out of its retention window.
pub fn retention(app: &App) {
    let now = now_micros();
    for p in app.tenants.all() {
        let keep = i64::try_from(p.retention_days)
            .unwrap_or(i64::MAX)
            .saturating_mul(86_400_000_000);
        match app.engine.enforce_retention(p.id, now.saturating_sub(keep)) {
            Ok((0, _)) => {}
            Ok((segments, logs)) => {
                tracing::info!(project = %format!("{:016x}", p.id), segments, logs, "retention dropped expired logs")
            }
            Err(e) => {
                tracing::error!(project = %format!("{:016x}", p.id), error = %e, "retention failed")
            }
        }
    }
}

/// Writes API keys' `last_used_at` to redb.
pub fn flush_key_use(app: &App) {
    let used = app.auth.keys.take_dirty();
    if let Err(e) = app.meta.touch_keys(&used) {
        tracing::error!(error = %e, "could not record key use");
    }
}
