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
    /// `GET`/`HEAD /_license`: the licence Elasticsearch shippers check at start.
    EsLicense,
    LokiPush,
    OtlpLogs,
    /// `/ui` and everything under it: the web console.
    Console,
    /// `GET /api/v1/openapi.json`.
    OpenApi,
    /// `GET /docs` (the page) and `/docs/{asset}` (its script and style).
    Docs(Option<String>),
}

/// What a route is, without its path parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Health,
    HealthDeep,
    Metrics,
    Register,
    Login,
    Me,
    Audit,
    Projects,
    Project,
    Keys,
    Key,
    Rejected,
    Deletions,
    Deletion,
    IngestSingle,
    IngestBatch,
    QueueDepth,
    Logs,
    LogsSearch,
    LogsTail,
    LogsPatterns,
    Log,
    ErrorRate,
    LogVolume,
    TopErrors,
    UsageStats,
    Root,
    EsBulk,
    EsIndexBulk,
    EsLicense,
    LokiPush,
    OtlpLogs,
    Console,
    ConsolePage,
    OpenApi,
    Docs,
    DocsAsset,
}

/// Every route the server answers: its path template (the syntax of OpenAPI and of the
/// `matchit` router), the methods it takes, and what it is. The router is built from this
/// table, and a test checks that `openapi.json` describes exactly these operations.
pub const ROUTES: &[(&str, &str, Kind)] = &[
    ("/health", "GET", Kind::Health),
    ("/health/deep", "GET", Kind::HealthDeep),
    ("/metrics", "GET", Kind::Metrics),
    ("/api/v1/auth/register", "POST", Kind::Register),
    ("/api/v1/auth/login", "POST", Kind::Login),
    ("/api/v1/auth/me", "GET", Kind::Me),
    ("/api/v1/audit", "GET", Kind::Audit),
    ("/api/v1/projects", "GET, POST", Kind::Projects),
    (
        "/api/v1/projects/{project_id}",
        "GET, PATCH, DELETE",
        Kind::Project,
    ),
    (
        "/api/v1/projects/{project_id}/keys",
        "GET, POST",
        Kind::Keys,
    ),
    (
        "/api/v1/projects/{project_id}/keys/{key_id}",
        "DELETE",
        Kind::Key,
    ),
    (
        "/api/v1/projects/{project_id}/rejected",
        "GET",
        Kind::Rejected,
    ),
    (
        "/api/v1/projects/{project_id}/deletions",
        "GET, POST",
        Kind::Deletions,
    ),
    (
        "/api/v1/projects/{project_id}/deletions/{deletion_id}",
        "GET",
        Kind::Deletion,
    ),
    ("/api/v1/ingest/single", "POST", Kind::IngestSingle),
    ("/api/v1/ingest/batch", "POST", Kind::IngestBatch),
    ("/api/v1/queue/depth", "GET", Kind::QueueDepth),
    ("/api/v1/logs", "GET", Kind::Logs),
    ("/api/v1/logs/search", "GET", Kind::LogsSearch),
    ("/api/v1/logs/tail", "GET", Kind::LogsTail),
    ("/api/v1/logs/patterns", "GET", Kind::LogsPatterns),
    ("/api/v1/logs/{id}", "GET", Kind::Log),
    ("/api/v1/metrics/error-rate", "GET", Kind::ErrorRate),
    ("/api/v1/metrics/log-volume", "GET", Kind::LogVolume),
    ("/api/v1/metrics/top-errors", "GET", Kind::TopErrors),
    ("/api/v1/metrics/usage-stats", "GET", Kind::UsageStats),
    ("/api/v1/openapi.json", "GET", Kind::OpenApi),
    ("/docs", "GET", Kind::Docs),
    ("/docs/{asset}", "GET", Kind::DocsAsset),
    ("/", "GET, HEAD", Kind::Root),
    ("/_bulk", "POST, PUT", Kind::EsBulk),
    ("/{index}/_bulk", "POST, PUT", Kind::EsIndexBulk),
    ("/_license", "GET, HEAD", Kind::EsLicense),
    ("/loki/api/v1/push", "POST", Kind::LokiPush),
    ("/otlp/v1/logs", "POST", Kind::OtlpLogs),
    ("/ui", "GET, HEAD", Kind::Console),
    ("/ui/{*page}", "GET, HEAD", Kind::ConsolePage),
];

fn table() -> &'static matchit::Router<Kind> {
    static ROUTER: std::sync::OnceLock<matchit::Router<Kind>> = std::sync::OnceLock::new();
    ROUTER.get_or_init(|| {
        let mut r = matchit::Router::new();
        for (path, _, kind) in ROUTES {
            // The table is a constant checked by the tests: an insert cannot fail.
            let _ = r.insert(*path, *kind);
        }
        r
    })
}

impl Kind {
    /// The path template, the `route` label of request metrics and of rejected logs.
    pub fn template(self) -> &'static str {
        self.entry().0
    }

    fn entry(self) -> &'static (&'static str, &'static str, Kind) {
        ROUTES
            .iter()
            .find(|(_, _, k)| *k == self)
            .unwrap_or(&ROUTES[0])
    }
}

impl Route {
    fn kind(&self) -> Kind {
        match self {
            Route::Health => Kind::Health,
            Route::HealthDeep => Kind::HealthDeep,
            Route::Metrics => Kind::Metrics,
            Route::Register => Kind::Register,
            Route::Login => Kind::Login,
            Route::Me => Kind::Me,
            Route::Audit => Kind::Audit,
            Route::Projects => Kind::Projects,
            Route::Project(_) => Kind::Project,
            Route::Keys(_) => Kind::Keys,
            Route::Key(..) => Kind::Key,
            Route::Rejected(_) => Kind::Rejected,
            Route::Deletions(_) => Kind::Deletions,
            Route::Deletion(..) => Kind::Deletion,
            Route::IngestSingle => Kind::IngestSingle,
            Route::IngestBatch => Kind::IngestBatch,
            Route::QueueDepth => Kind::QueueDepth,
            Route::Logs => Kind::Logs,
            Route::LogsSearch => Kind::LogsSearch,
            Route::LogsTail => Kind::LogsTail,
            Route::LogsPatterns => Kind::LogsPatterns,
            Route::Log(_) => Kind::Log,
            Route::ErrorRate => Kind::ErrorRate,
            Route::LogVolume => Kind::LogVolume,
            Route::TopErrors => Kind::TopErrors,
            Route::UsageStats => Kind::UsageStats,
            Route::Root => Kind::Root,
            Route::EsBulk(None) => Kind::EsBulk,
            Route::EsBulk(Some(_)) => Kind::EsIndexBulk,
            Route::EsLicense => Kind::EsLicense,
            Route::LokiPush => Kind::LokiPush,
            Route::OtlpLogs => Kind::OtlpLogs,
            Route::Console => Kind::Console,
            Route::OpenApi => Kind::OpenApi,
            Route::Docs(None) => Kind::Docs,
            Route::Docs(Some(_)) => Kind::DocsAsset,
        }
    }

    /// The path template, the `route` label of request metrics.
    pub fn template(&self) -> &'static str {
        self.kind().template()
    }

    /// The methods the route answers, as the `Allow` header lists them.
    pub fn allow(&self) -> &'static str {
        self.kind().entry().1
    }

    /// Whether a `HEAD` of this route is answered as its `GET` (without the body): routes
    /// that serve `GET` but list no `HEAD` of their own, except the live tail's stream.
    pub fn head_as_get(&self) -> bool {
        let mut methods = self.allow().split(", ");
        !matches!(self, Route::LogsTail)
            && methods.clone().any(|m| m == "GET")
            && !methods.any(|m| m == "HEAD")
    }

    /// Elasticsearch's routes, which answer every error in Elasticsearch's shape.
    pub fn is_elasticsearch(&self) -> bool {
        matches!(self, Route::Root | Route::EsBulk(_) | Route::EsLicense)
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
    // A browser's `/ui/` and `/docs/` are the pages without the slash.
    let path = match path {
        "/ui/" | "/docs/" => &path[..path.len() - 1],
        _ => path,
    };
    let m = table().at(path).ok()?;
    let p = |name: &str| m.params.get(name).unwrap_or_default().to_owned();
    Some(match m.value {
        Kind::Health => Route::Health,
        Kind::HealthDeep => Route::HealthDeep,
        Kind::Metrics => Route::Metrics,
        Kind::Register => Route::Register,
        Kind::Login => Route::Login,
        Kind::Me => Route::Me,
        Kind::Audit => Route::Audit,
        Kind::Projects => Route::Projects,
        Kind::Project => Route::Project(p("project_id")),
        Kind::Keys => Route::Keys(p("project_id")),
        Kind::Key => Route::Key(p("project_id"), p("key_id")),
        Kind::Rejected => Route::Rejected(p("project_id")),
        Kind::Deletions => Route::Deletions(p("project_id")),
        Kind::Deletion => Route::Deletion(p("project_id"), p("deletion_id")),
        Kind::IngestSingle => Route::IngestSingle,
        Kind::IngestBatch => Route::IngestBatch,
        Kind::QueueDepth => Route::QueueDepth,
        Kind::Logs => Route::Logs,
        Kind::LogsSearch => Route::LogsSearch,
        Kind::LogsTail => Route::LogsTail,
        Kind::LogsPatterns => Route::LogsPatterns,
        Kind::Log => Route::Log(p("id")),
        Kind::ErrorRate => Route::ErrorRate,
        Kind::LogVolume => Route::LogVolume,
        Kind::TopErrors => Route::TopErrors,
        Kind::UsageStats => Route::UsageStats,
        Kind::Root => Route::Root,
        Kind::EsBulk => Route::EsBulk(None),
        Kind::EsIndexBulk => Route::EsBulk(Some(p("index"))),
        Kind::EsLicense => Route::EsLicense,
        Kind::LokiPush => Route::LokiPush,
        Kind::OtlpLogs => Route::OtlpLogs,
        Kind::Console | Kind::ConsolePage => Route::Console,
        Kind::OpenApi => Route::OpenApi,
        Kind::Docs => Route::Docs(None),
        Kind::DocsAsset => Route::Docs(Some(p("asset"))),
    })
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
        assert_eq!(resolve("/ui"), Some(Route::Console));
        assert_eq!(resolve("/ui/explore/x"), Some(Route::Console));
        assert_eq!(
            resolve("/api/_bulk"),
            Some(Route::EsBulk(Some("api".into()))),
            "a static prefix does not hide a parameter"
        );
        assert_eq!(resolve("/api/v1/projects//keys"), None);
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
    fn every_route_of_the_table_resolves_to_its_own_kind() {
        for (path, _, kind) in ROUTES {
            let concrete = path
                .replace("{*page}", "explore")
                .replace('{', "x")
                .replace('}', "");
            let r = resolve(&concrete).unwrap_or_else(|| panic!("{path} does not resolve"));
            // Every console path is one route to the handler.
            let want = if *kind == Kind::ConsolePage {
                Kind::Console
            } else {
                *kind
            };
            assert_eq!(r.kind(), want, "{path}");
        }
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
