//! Method and path dispatch: which route a request is for, and which methods it allows.
//! Unknown paths are 404 `not_found`; a known path with the wrong method is 405
//! `method_not_allowed` with an `Allow` header.

use hyper::Method;

use crate::error::ApiError;

/// A route, with the path parameters it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Health,
    HealthDeep,
    Metrics,
    Register,
    Login,
    Me,
    Audit,
    Projects,
    Project(String),
    Keys(String),
    Key(String, String),
    Rejected(String),
    Deletions(String),
    Deletion(String, String),
    IngestSingle,
    IngestBatch,
    QueueDepth,
    Logs,
    LogsSearch,
    LogsTail,
    LogsPatterns,
    Log(String),
    ErrorRate,
    LogVolume,
    TopErrors,
    UsageStats,
    /// `GET`/`HEAD /`: Elasticsearch node info for clients (the console for browsers).
    Root,
    /// `/_bulk` or `/{index}/_bulk`.
    EsBulk(Option<String>),
    LokiPush,
    OtlpLogs,
    /// `/ui` and everything under it: the web console.
    Console,
}

impl Route {
    /// The path template, the `route` label of request metrics.
    pub fn template(&self) -> &'static str {
        match self {
            Route::Health => "/health",
            Route::HealthDeep => "/health/deep",
            Route::Metrics => "/metrics",
            Route::Register => "/api/v1/auth/register",
            Route::Login => "/api/v1/auth/login",
            Route::Me => "/api/v1/auth/me",
            Route::Audit => "/api/v1/audit",
            Route::Projects => "/api/v1/projects",
            Route::Project(_) => "/api/v1/projects/{project_id}",
            Route::Keys(_) => "/api/v1/projects/{project_id}/keys",
            Route::Key(..) => "/api/v1/projects/{project_id}/keys/{key_id}",
            Route::Rejected(_) => "/api/v1/projects/{project_id}/rejected",
            Route::Deletions(_) => "/api/v1/projects/{project_id}/deletions",
            Route::Deletion(..) => "/api/v1/projects/{project_id}/deletions/{deletion_id}",
            Route::IngestSingle => "/api/v1/ingest/single",
            Route::IngestBatch => "/api/v1/ingest/batch",
            Route::QueueDepth => "/api/v1/queue/depth",
            Route::Logs => "/api/v1/logs",
            Route::LogsSearch => "/api/v1/logs/search",
            Route::LogsTail => "/api/v1/logs/tail",
            Route::LogsPatterns => "/api/v1/logs/patterns",
            Route::Log(_) => "/api/v1/logs/{id}",
            Route::ErrorRate => "/api/v1/metrics/error-rate",
            Route::LogVolume => "/api/v1/metrics/log-volume",
            Route::TopErrors => "/api/v1/metrics/top-errors",
            Route::UsageStats => "/api/v1/metrics/usage-stats",
            Route::Root => "/",
            Route::EsBulk(None) => "/_bulk",
            Route::EsBulk(Some(_)) => "/{index}/_bulk",
            Route::LokiPush => "/loki/api/v1/push",
            Route::OtlpLogs => "/otlp/v1/logs",
            Route::Console => "/ui",
        }
    }

    /// The methods the route answers, as the `Allow` header lists them.
    pub fn allow(&self) -> &'static str {
        match self {
            Route::Register
            | Route::Login
            | Route::IngestSingle
            | Route::IngestBatch
            | Route::LokiPush
            | Route::OtlpLogs => "POST",
            Route::Root | Route::Console => "GET, HEAD",
            Route::EsBulk(_) => "POST, PUT",
            Route::Projects | Route::Keys(_) | Route::Deletions(_) => "GET, POST",
            Route::Project(_) => "GET, PATCH, DELETE",
            Route::Key(..) => "DELETE",
            _ => "GET",
        }
    }

    /// Ok when the route answers `method`; otherwise the 405.
    pub fn check_method(&self, method: &Method) -> Result<(), ApiError> {
        let allow = self.allow();
        if allow.split(", ").any(|m| m == method.as_str()) {
            Ok(())
        } else {
            Err(ApiError::MethodNotAllowed { allow })
        }
    }
}

/// The route of a path (without its query string), if there is one.
pub fn resolve(path: &str) -> Option<Route> {
    let rest = path.strip_prefix('/')?;
    let segs: Vec<&str> = rest.split('/').collect();
    let route = match segs.as_slice() {
        [""] => Route::Root,
        ["_bulk"] => Route::EsBulk(None),
        [index, "_bulk"] if !index.is_empty() => Route::EsBulk(Some((*index).to_owned())),
        ["loki", "api", "v1", "push"] => Route::LokiPush,
        ["otlp", "v1", "logs"] => Route::OtlpLogs,
        ["ui", ..] => Route::Console,
        ["health"] => Route::Health,
        ["health", "deep"] => Route::HealthDeep,
        ["metrics"] => Route::Metrics,
        ["api", "v1", tail @ ..] => match tail {
            ["auth", "register"] => Route::Register,
            ["auth", "login"] => Route::Login,
            ["auth", "me"] => Route::Me,
            ["audit"] => Route::Audit,
            ["projects"] => Route::Projects,
            ["projects", p] if !p.is_empty() => Route::Project((*p).to_owned()),
            ["projects", p, "keys"] if !p.is_empty() => Route::Keys((*p).to_owned()),
            ["projects", p, "keys", k] if !p.is_empty() && !k.is_empty() => {
                Route::Key((*p).to_owned(), (*k).to_owned())
            }
            ["projects", p, "rejected"] if !p.is_empty() => Route::Rejected((*p).to_owned()),
            ["projects", p, "deletions"] if !p.is_empty() => Route::Deletions((*p).to_owned()),
            ["projects", p, "deletions", d] if !p.is_empty() && !d.is_empty() => {
                Route::Deletion((*p).to_owned(), (*d).to_owned())
            }
            ["ingest", "single"] => Route::IngestSingle,
            ["ingest", "batch"] => Route::IngestBatch,
            ["queue", "depth"] => Route::QueueDepth,
            ["logs"] => Route::Logs,
            ["logs", "search"] => Route::LogsSearch,
            ["logs", "tail"] => Route::LogsTail,
            ["logs", "patterns"] => Route::LogsPatterns,
            ["logs", id] if !id.is_empty() => Route::Log((*id).to_owned()),
            ["metrics", "error-rate"] => Route::ErrorRate,
            ["metrics", "log-volume"] => Route::LogVolume,
            ["metrics", "top-errors"] => Route::TopErrors,
            ["metrics", "usage-stats"] => Route::UsageStats,
            _ => return None,
        },
        _ => return None,
    };
    Some(route)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_routes_win_over_parameters() {
        assert_eq!(resolve("/api/v1/logs/search"), Some(Route::LogsSearch));
        assert_eq!(resolve("/api/v1/logs/abc"), Some(Route::Log("abc".into())));
        assert_eq!(resolve("/api/v1/logs/"), None);
        assert_eq!(resolve("/nope"), None);
        assert_eq!(resolve("/"), Some(Route::Root));
        assert_eq!(resolve("/_bulk"), Some(Route::EsBulk(None)));
        assert_eq!(
            resolve("/logs-app/_bulk"),
            Some(Route::EsBulk(Some("logs-app".into())))
        );
        assert_eq!(resolve("/otlp/v1/logs"), Some(Route::OtlpLogs));
        assert_eq!(resolve("/loki/api/v1/push"), Some(Route::LokiPush));
        assert_eq!(
            resolve("/api/v1/projects/p/keys/k"),
            Some(Route::Key("p".into(), "k".into()))
        );
    }

    #[test]
    fn wrong_methods_are_405_with_allow() {
        let e = Route::Key("p".into(), "k".into())
            .check_method(&Method::GET)
            .unwrap_err();
        assert_eq!(e.status(), 405);
        assert_eq!(e.allow(), Some("DELETE"));
        assert!(Route::Projects.check_method(&Method::POST).is_ok());
    }
}
