//! Every path the Worker answers, in one table, and the pure matcher that resolves a request to a route.
//!
//! A route is a method, a pattern (`/api/lookup/{id}`: literal segments and `{name}` parameters), the
//! handler it runs ([`RouteId`]) and the group it belongs to (rate-limit policies and session loading are
//! chosen per group). Metrics are labelled with the pattern, never the raw path, so a scan of random URLs
//! cannot blow up the number of series.
//!
//! Resolution is exact: no trailing-slash or case folding. A path that matches a pattern under another
//! method is a 405 with `Allow`; a path that matches nothing is a 404. `HEAD` is answered by the `GET`
//! route (the runtime drops the body).

/// The HTTP methods the API uses; anything else is [`Method::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// `GET`
    Get,
    /// `HEAD` (answered by the `GET` route)
    Head,
    /// `POST`
    Post,
    /// `PUT`
    Put,
    /// `PATCH`
    Patch,
    /// `DELETE`
    Delete,
    /// `OPTIONS` (CORS preflight, answered before routing)
    Options,
    /// Any other method.
    Other,
}

impl Method {
    /// Parses a method name (case-sensitive, as HTTP defines it).
    pub fn parse(name: &str) -> Method {
        match name {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            _ => Method::Other,
        }
    }

    /// The method's name (`"OTHER"` for the catch-all, used as a bounded metrics label).
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Other => "OTHER",
        }
    }

    /// Whether a request with this method may carry a body the handler reads.
    pub fn has_body(self) -> bool {
        matches!(
            self,
            Method::Post | Method::Put | Method::Patch | Method::Delete
        )
    }
}

/// Which handler a route runs. Capability routes add their variants here and an arm in the dispatcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteId {
    /// `GET /api`: this table, as JSON.
    Index,
    /// `GET /api/health`: PING through the request's shared batch.
    Health,
    /// `GET /api/metrics`: Prometheus text exposition of this isolate's counters.
    Metrics,
    /// `POST /api/session`: sign in.
    SessionSignIn,
    /// `GET /api/session`: who am I.
    SessionCurrent,
    /// `PATCH /api/session`: update the session's data.
    SessionUpdate,
    /// `DELETE /api/session`: sign out.
    SessionSignOut,
    /// `GET /api/sessions`: my sessions.
    SessionList,
    /// `DELETE /api/sessions/{id}`: revoke one of my sessions.
    SessionRevoke,
    /// `DELETE /api/sessions`: sign out everywhere.
    SessionSignOutAll,
    /// `GET /api/lookup/{id}`: a cached lookup.
    Lookup,
    /// `DELETE /api/lookup/{id}`: invalidate one item.
    LookupInvalidate,
    /// `DELETE /api/lookup/tags/{tag}`: invalidate a tag.
    LookupInvalidateTag,
    /// `GET /api/cache/metrics`: the cache's counters as JSON.
    CacheMetrics,
    /// `GET /api/ratelimit`: the configured policies.
    RateLimitList,
    /// `POST /api/ratelimit/{policy}`: spend.
    RateLimitSpend,
    /// `GET /api/ratelimit/{policy}`: peek.
    RateLimitPeek,
    /// `DELETE /api/ratelimit/{policy}`: reset this identifier.
    RateLimitReset,
    /// `GET /api/dashboard`: a rate-limit decision, the session and a cached item in one round trip.
    Dashboard,
}

/// A family of routes that share a rate-limit policy and decide whether the session is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// Operational routes (index, health, metrics).
    Ops,
    /// Session routes.
    Session,
    /// Cached lookups.
    Lookup,
    /// The rate-limit demo routes.
    RateLimit,
    /// The combined route.
    Dashboard,
}

impl Group {
    /// Every group, in the order they are documented.
    pub const ALL: [Group; 5] = [
        Group::Ops,
        Group::Session,
        Group::Lookup,
        Group::RateLimit,
        Group::Dashboard,
    ];

    /// Whether the middleware loads the visitor's session (when a cookie is sent) for this group. The
    /// session routes load it themselves, with the script each needs; the operational ones never do.
    pub fn loads_session(self) -> bool {
        matches!(self, Group::Lookup | Group::RateLimit | Group::Dashboard)
    }

    /// Whether the group's routes send `RateLimit` headers of their own (the rate-limit demo reports
    /// the policy it spends from): the middleware's decision then refuses with 429 but adds no headers.
    pub fn reports_own_limit(self) -> bool {
        self == Group::RateLimit
    }

    /// The group's name, as used in configuration and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Group::Ops => "ops",
            Group::Session => "session",
            Group::Lookup => "lookup",
            Group::RateLimit => "ratelimit",
            Group::Dashboard => "dashboard",
        }
    }
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The method the route answers (never `HEAD`, `OPTIONS` or `Other`).
    pub method: Method,
    /// Literal segments and `{name}` parameters, starting with `/`.
    pub pattern: &'static str,
    /// The handler.
    pub id: RouteId,
    /// The route's group.
    pub group: Group,
    /// What one request spends from its group's rate-limit policy: its Redis work (1 for a route that
    /// runs a command or one script, 2 for one that writes several records, such as signing in).
    /// 0 for a route that needs no Redis at all: it is not limited, since the check would be its only
    /// Redis call.
    pub cost: u32,
    /// One line for `GET /api`.
    pub summary: &'static str,
}

/// Every route of the Worker. Order does not matter: a literal segment beats a parameter (see
/// [`resolve`]).
pub const ROUTES: &[Route] = &[
    Route {
        method: Method::Get,
        pattern: "/api",
        id: RouteId::Index,
        group: Group::Ops,
        cost: 0,
        summary: "this list of routes",
    },
    Route {
        method: Method::Get,
        pattern: "/api/health",
        id: RouteId::Health,
        group: Group::Ops,
        cost: 1,
        summary: "is Redis reachable, and how long does a PING take",
    },
    Route {
        method: Method::Get,
        pattern: "/api/metrics",
        id: RouteId::Metrics,
        group: Group::Ops,
        cost: 0,
        summary: "this isolate's counters in the Prometheus text format",
    },
    Route {
        method: Method::Post,
        pattern: "/api/session",
        id: RouteId::SessionSignIn,
        group: Group::Session,
        cost: 2,
        summary: "sign in by user name (demo: no password); sets the session cookie",
    },
    Route {
        method: Method::Get,
        pattern: "/api/session",
        id: RouteId::SessionCurrent,
        group: Group::Session,
        cost: 1,
        summary: "the current session (refreshed when due)",
    },
    Route {
        method: Method::Patch,
        pattern: "/api/session",
        id: RouteId::SessionUpdate,
        group: Group::Session,
        cost: 1,
        summary: "replace the session's data; `version` for compare-and-set",
    },
    Route {
        method: Method::Delete,
        pattern: "/api/session",
        id: RouteId::SessionSignOut,
        group: Group::Session,
        cost: 1,
        summary: "sign out of this session",
    },
    Route {
        method: Method::Get,
        pattern: "/api/sessions",
        id: RouteId::SessionList,
        group: Group::Session,
        cost: 1,
        summary: "my live sessions",
    },
    Route {
        method: Method::Delete,
        pattern: "/api/sessions/{id}",
        id: RouteId::SessionRevoke,
        group: Group::Session,
        cost: 1,
        summary: "revoke one of my sessions by id",
    },
    Route {
        method: Method::Delete,
        pattern: "/api/sessions",
        id: RouteId::SessionSignOutAll,
        group: Group::Session,
        cost: 2,
        summary: "sign out everywhere",
    },
    Route {
        method: Method::Get,
        pattern: "/api/lookup/{id}",
        id: RouteId::Lookup,
        group: Group::Lookup,
        cost: 1,
        summary: "an item through the cache in front of a slow origin: hit, miss, stale or negative",
    },
    Route {
        method: Method::Delete,
        pattern: "/api/lookup/{id}",
        id: RouteId::LookupInvalidate,
        group: Group::Lookup,
        cost: 1,
        summary: "invalidate one cached item",
    },
    Route {
        method: Method::Delete,
        pattern: "/api/lookup/tags/{tag}",
        id: RouteId::LookupInvalidateTag,
        group: Group::Lookup,
        cost: 1,
        summary: "invalidate every cached item with a tag (`demo`, `group-0` .. `group-9`)",
    },
    Route {
        method: Method::Get,
        pattern: "/api/cache/metrics",
        id: RouteId::CacheMetrics,
        group: Group::Ops,
        cost: 0,
        summary: "this isolate's cache counters per key group, as JSON",
    },
    Route {
        method: Method::Get,
        pattern: "/api/ratelimit",
        id: RouteId::RateLimitList,
        group: Group::RateLimit,
        cost: 0,
        summary: "the configured rate-limit policies",
    },
    Route {
        method: Method::Post,
        pattern: "/api/ratelimit/{policy}",
        id: RouteId::RateLimitSpend,
        group: Group::RateLimit,
        cost: 1,
        summary: "spend from a policy's budget (`{\"cost\": n}`, default 1); 429 when refused",
    },
    Route {
        method: Method::Get,
        pattern: "/api/ratelimit/{policy}",
        id: RouteId::RateLimitPeek,
        group: Group::RateLimit,
        cost: 1,
        summary: "the budget left, without charging",
    },
    Route {
        method: Method::Delete,
        pattern: "/api/ratelimit/{policy}",
        id: RouteId::RateLimitReset,
        group: Group::RateLimit,
        cost: 1,
        summary: "reset this identifier's budget",
    },
    Route {
        method: Method::Get,
        pattern: "/api/dashboard",
        id: RouteId::Dashboard,
        group: Group::Dashboard,
        cost: 1,
        summary: "a rate-limit decision, your session and a cached item (`?item=`), in one Redis round trip",
    },
];

/// The outcome of matching a request against the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// A route answers; its parameters are percent-decoded, in pattern order.
    Found {
        /// The matched row.
        route: &'static Route,
        /// `(name, value)` for each `{name}` of the pattern.
        params: Vec<(&'static str, String)>,
    },
    /// The path exists under other methods (the `Allow` header value).
    MethodNotAllowed {
        /// The methods the path answers, comma separated, `HEAD` and `OPTIONS` included.
        allow: String,
    },
    /// A parameter is not valid percent-encoded UTF-8.
    BadPath {
        /// Which parameter, and why.
        detail: String,
    },
    /// Nothing matches.
    NotFound,
}

/// Matches `method` and `path` (the URL's path, still percent-encoded) against [`ROUTES`].
pub fn resolve(method: Method, path: &str) -> Resolution {
    resolve_in(ROUTES, method, path)
}

/// A matching route, its still-encoded parameters and its number of literal segments.
type Candidate<'p> = (&'static Route, Vec<(&'static str, &'p str)>, usize);

/// [`resolve`] against any table (tests use small ones).
pub fn resolve_in(table: &'static [Route], method: Method, path: &str) -> Resolution {
    let wanted = if method == Method::Head {
        Method::Get
    } else {
        method
    };
    let mut allowed: Vec<Method> = Vec::new();
    // The best match so far: the route, its raw parameters, its number of literal segments.
    let mut best: Option<Candidate<'_>> = None;
    for route in table {
        let Some((params, literals)) = match_pattern(route.pattern, path) else {
            continue;
        };
        if route.method != wanted {
            if !allowed.contains(&route.method) {
                allowed.push(route.method);
            }
            continue;
        }
        if best.as_ref().is_none_or(|(_, _, l)| literals > *l) {
            best = Some((route, params, literals));
        }
    }
    if let Some((route, raw, _)) = best {
        let mut params = Vec::with_capacity(raw.len());
        for (name, value) in raw {
            match percent_decode(value) {
                Some(decoded) => params.push((name, decoded)),
                None => {
                    return Resolution::BadPath {
                        detail: format!(
                            "the `{name}` segment of the path is not valid percent-encoded UTF-8"
                        ),
                    };
                }
            }
        }
        return Resolution::Found { route, params };
    }
    if allowed.is_empty() {
        return Resolution::NotFound;
    }
    Resolution::MethodNotAllowed {
        allow: allow_header(&allowed),
    }
}

/// `GET, HEAD, POST, OPTIONS`: the methods in table order, `HEAD` after `GET`, `OPTIONS` last.
fn allow_header(methods: &[Method]) -> String {
    let mut names: Vec<&str> = Vec::new();
    for method in methods {
        names.push(method.as_str());
        if *method == Method::Get {
            names.push("HEAD");
        }
    }
    names.push("OPTIONS");
    names.join(", ")
}

/// The parameters (still encoded) and the number of literal segments when `path` fits `pattern`.
fn match_pattern<'p>(
    pattern: &'static str,
    path: &'p str,
) -> Option<(Vec<(&'static str, &'p str)>, usize)> {
    let mut want = pattern.split('/');
    let mut have = path.split('/');
    let mut params = Vec::new();
    let mut literals = 0;
    loop {
        match (want.next(), have.next()) {
            (None, None) => return Some((params, literals)),
            (Some(w), Some(h)) => {
                if let Some(name) = w.strip_prefix('{').and_then(|n| n.strip_suffix('}')) {
                    if h.is_empty() {
                        return None;
                    }
                    params.push((name, h));
                } else if w == h {
                    literals += 1;
                } else {
                    return None;
                }
            }
            _ => return None,
        }
    }
}

/// The path of an absolute URL as the runtime serializes it (`https://host:port/a/b?q#f` gives `/a/b`),
/// still percent-encoded; `/` when the URL has no path.
pub fn path_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(url, |i| &url[i + 3..]);
    let Some(start) = after_scheme.find(['/', '?', '#']) else {
        return "/";
    };
    let rest = &after_scheme[start..];
    if !rest.starts_with('/') {
        return "/";
    }
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    &rest[..end]
}

/// The first query parameter `name` of `url` (form-decoded: `+` is a space), if present and valid.
///
/// Parsed by hand rather than with a URL library: the Worker needs nothing else from one, and one with
/// international domain names adds about 200 KB to the wasm.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let without_fragment = url.split('#').next().unwrap_or("");
    let (_, query) = without_fragment.split_once('?')?;
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let key = percent_decode(&key.replace('+', " "))?;
        (key == name)
            .then(|| percent_decode(&value.replace('+', " ")))
            .flatten()
    })
}

/// Decodes `%XX` escapes; `None` when an escape is malformed or the result is not UTF-8.
pub fn percent_decode(input: &str) -> Option<String> {
    let bytes = input.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let text = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(text, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod path_tests {
    use super::path_of;

    #[test]
    fn the_path_is_what_lies_between_the_authority_and_the_query() {
        for (url, path) in [
            ("https://example.com/", "/"),
            ("https://example.com", "/"),
            ("http://127.0.0.1:8787/api/lookup/7", "/api/lookup/7"),
            ("https://example.com/api?x=/y", "/api"),
            ("https://example.com/api#/frag?x", "/api"),
            ("https://example.com?q=/a", "/"),
            ("https://example.com#/a", "/"),
            ("https://example.com/a%2Fb%3F?c", "/a%2Fb%3F"),
            ("https://example.com//double", "//double"),
            ("/relative/path?x", "/relative/path"),
        ] {
            assert_eq!(path_of(url), path, "{url}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &[Route] = &[
        Route {
            method: Method::Get,
            pattern: "/api/items/{id}",
            id: RouteId::Health,
            group: Group::Ops,
            cost: 1,
            summary: "",
        },
        Route {
            method: Method::Delete,
            pattern: "/api/items/{id}",
            id: RouteId::Metrics,
            group: Group::Ops,
            cost: 1,
            summary: "",
        },
        Route {
            method: Method::Get,
            pattern: "/api/items/special",
            id: RouteId::Index,
            group: Group::Ops,
            cost: 1,
            summary: "",
        },
    ];

    fn found(resolution: Resolution) -> (RouteId, Vec<(&'static str, String)>) {
        match resolution {
            Resolution::Found { route, params } => (route.id, params),
            other => panic!("expected a route, got {other:?}"),
        }
    }

    #[test]
    fn parameters_are_extracted_and_decoded() {
        let (id, params) = found(resolve_in(TABLE, Method::Get, "/api/items/a%20b%C3%A9"));
        assert_eq!(id, RouteId::Health);
        assert_eq!(params, vec![("id", "a bé".to_owned())]);
    }

    #[test]
    fn a_literal_segment_beats_a_parameter() {
        assert_eq!(
            found(resolve_in(TABLE, Method::Get, "/api/items/special")).0,
            RouteId::Index
        );
    }

    #[test]
    fn head_is_answered_by_get() {
        assert_eq!(
            found(resolve_in(TABLE, Method::Head, "/api/items/7")).0,
            RouteId::Health
        );
    }

    #[test]
    fn a_known_path_under_another_method_is_405_with_allow() {
        assert_eq!(
            resolve_in(TABLE, Method::Post, "/api/items/7"),
            Resolution::MethodNotAllowed {
                allow: "GET, HEAD, DELETE, OPTIONS".into()
            }
        );
    }

    #[test]
    fn unknown_and_near_miss_paths_are_404() {
        for path in [
            "/api/items",
            "/api/items/",
            "/api/items/7/",
            "/api/items/7/x",
            "/API/items/7",
            "",
            "/",
            "//",
        ] {
            assert_eq!(
                resolve_in(TABLE, Method::Get, path),
                Resolution::NotFound,
                "{path}"
            );
        }
    }

    #[test]
    fn malformed_escapes_are_a_bad_path_not_a_panic() {
        for path in [
            "/api/items/%",
            "/api/items/%zz",
            "/api/items/%C3",
            "/api/items/%E2%82",
        ] {
            assert!(
                matches!(
                    resolve_in(TABLE, Method::Get, path),
                    Resolution::BadPath { .. }
                ),
                "{path}"
            );
        }
    }

    #[test]
    fn query_parameters_are_form_decoded() {
        let url = "https://w.example/api/x?id=user%2042&empty=&flag&id=second&sp=a+b#id=frag";
        assert_eq!(query_param(url, "id").as_deref(), Some("user 42"));
        assert_eq!(query_param(url, "empty").as_deref(), Some(""));
        assert_eq!(query_param(url, "flag").as_deref(), Some(""));
        assert_eq!(query_param(url, "sp").as_deref(), Some("a b"));
        assert_eq!(query_param(url, "missing"), None);
        assert_eq!(query_param("https://w.example/api/x", "id"), None);
        assert_eq!(query_param("https://w.example/?id=%zz", "id"), None);
    }

    #[test]
    fn the_real_table_is_well_formed() {
        for (i, a) in ROUTES.iter().enumerate() {
            assert!(a.pattern.starts_with("/api"), "{}", a.pattern);
            assert!(
                !matches!(a.method, Method::Head | Method::Options | Method::Other),
                "{}",
                a.pattern
            );
            for b in ROUTES.iter().skip(i + 1) {
                assert!(
                    !(a.method == b.method && a.pattern == b.pattern),
                    "duplicate route {} {}",
                    a.method.as_str(),
                    a.pattern
                );
            }
            let sample = a.pattern.replace("{", "x").replace("}", "");
            assert!(
                matches!(resolve(a.method, &sample), Resolution::Found { .. }),
                "{}",
                a.pattern
            );
        }
    }
}
