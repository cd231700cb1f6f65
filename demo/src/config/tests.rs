//! Every rule of the configuration, through [`Config::from_vars`].

use super::*;
use crate::client_ip::TRUSTED_HEADER_VAR;
use crate::routes::Group;
use redge::client::{DEFAULT_TIMEOUT_MS, TOKEN_VAR};
use redge::origin::Origin;

fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let owned: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| {
        owned
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

fn shown(origins: &[Origin]) -> Vec<String> {
    origins.iter().map(Origin::to_string).collect()
}

const GOOD: &[(&str, &str)] = &[
    (URL_VAR, "https://eu1.example.io/"),
    (TOKEN_VAR, "secret-token"),
];

#[test]
fn the_minimal_configuration_takes_defaults() {
    let config = Config::from_vars(vars(GOOD)).unwrap();
    assert_eq!(config.redis_url, "https://eu1.example.io/");
    assert_eq!(config.redis_timeout_ms, DEFAULT_TIMEOUT_MS);
    assert!(config.cors.allowed_origins.is_empty());
    assert_eq!(config.metrics_token, None);
}

#[test]
fn every_problem_is_listed_in_one_error() {
    let err = Config::from_vars(vars(&[
        (TOKEN_VAR, "  "),
        (TIMEOUT_VAR, "0"),
        (
            CORS_VAR,
            "https://ok.example, *, ftp://x.example, https://a.example/path",
        ),
        (METRICS_TOKEN_VAR, "has space"),
    ]))
    .unwrap_err();
    let names: Vec<&str> = err.problems.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            URL_VAR,
            TOKEN_VAR,
            TIMEOUT_VAR,
            CORS_VAR,
            CORS_VAR,
            CORS_VAR,
            METRICS_TOKEN_VAR
        ]
    );
    let text = err.to_string();
    assert!(
        text.starts_with("the Worker is misconfigured (7 problems): "),
        "{text}"
    );
    for name in [URL_VAR, TOKEN_VAR, TIMEOUT_VAR, CORS_VAR, METRICS_TOKEN_VAR] {
        assert!(text.contains(name), "{name} missing from {text}");
    }
    assert!(text.contains("wrangler secret put"), "{text}");
}

#[test]
fn the_url_and_token_get_the_clients_checks() {
    let err =
        Config::from_vars(vars(&[(URL_VAR, "eu1.example.io"), (TOKEN_VAR, "ok")])).unwrap_err();
    assert_eq!(err.problems.len(), 1);
    assert_eq!(err.problems[0].0, URL_VAR);
    let err =
        Config::from_vars(vars(&[(URL_VAR, "https://x.io"), (TOKEN_VAR, "a b")])).unwrap_err();
    assert_eq!(err.problems[0].0, TOKEN_VAR);
    // Both wrong at once: both reported.
    let err = Config::from_vars(vars(&[(URL_VAR, "ftp://x.io")])).unwrap_err();
    let names: Vec<&str> = err.problems.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, [URL_VAR, TOKEN_VAR]);
    assert!(err.problems[0].1.contains("http"), "{:?}", err.problems);
}

#[test]
fn timeouts_are_bounded() {
    for (text, ok) in [
        ("1", true),
        ("30000", true),
        ("30001", false),
        ("-5", false),
        ("1.5", false),
        ("soon", false),
    ] {
        let mut pairs = GOOD.to_vec();
        pairs.push((TIMEOUT_VAR, text));
        assert_eq!(Config::from_vars(vars(&pairs)).is_ok(), ok, "{text}");
    }
}

#[test]
fn origins_are_normalised_and_deduplicated() {
    let mut pairs = GOOD.to_vec();
    pairs.push((
        CORS_VAR,
        " https://App.Example.com/ ,http://localhost:8787,,https://app.example.com,http://[::1]:3000",
    ));
    let config = Config::from_vars(vars(&pairs)).unwrap();
    assert_eq!(
        shown(&config.cors.allowed_origins),
        [
            "https://app.example.com",
            "http://localhost:8787",
            "http://[::1]:3000"
        ]
    );
}

#[test]
fn session_settings_are_validated_with_the_rest() {
    let mut pairs = GOOD.to_vec();
    pairs.extend([
        (CORS_VAR, "https://app.example"),
        (SESSION_ORIGINS_VAR, "https://admin.example"),
        (SESSION_INSECURE_VAR, "true"),
        (SESSION_IDLE_VAR, "600"),
        (SESSION_CACHE_VAR, "2000"),
    ]);
    let config = Config::from_vars(vars(&pairs)).unwrap();
    assert!(config.session.insecure_cookie);
    assert_eq!(config.session.cache_ms, 2_000);
    assert_eq!(
        Config::from_vars(vars(GOOD)).unwrap().session.cache_ms,
        0,
        "off by default"
    );
    assert_eq!(
        shown(&config.session.allowed_origins),
        ["https://app.example", "https://admin.example"]
    );
    assert_eq!(config.session.store.lifetimes.idle_ms(), 600_000);

    let err = Config::from_vars(vars(&[
        (URL_VAR, "https://x.io"),
        (TOKEN_VAR, "t"),
        (SESSION_IDLE_VAR, "soon"),
        (SESSION_ABSOLUTE_VAR, "0"),
        (SESSION_INSECURE_VAR, "maybe"),
        (SESSION_ORIGINS_VAR, "*"),
        (SESSION_CACHE_VAR, "600000"),
    ]))
    .unwrap_err();
    let names: Vec<&str> = err.problems.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            SESSION_IDLE_VAR,
            SESSION_ABSOLUTE_VAR,
            SESSION_INSECURE_VAR,
            SESSION_CACHE_VAR,
            SESSION_ORIGINS_VAR
        ]
    );
}

#[test]
fn lookup_settings_are_validated_with_the_rest() {
    let mut pairs = GOOD.to_vec();
    pairs.extend([
        ("DEMO_ORIGIN_LATENCY_MS", "25"),
        ("ORIGIN_URL", "https://origin.example/items/"),
        ("CACHE_COLO_TTL_MS", "1500"),
    ]);
    let config = Config::from_vars(vars(&pairs)).unwrap();
    assert_eq!(config.lookup.origin_latency_ms, 25);
    assert_eq!(config.lookup.policy.colo_ttl_ms, 1_500);
    let off = Config::from_vars(vars(GOOD)).unwrap();
    assert_eq!(off.lookup.policy.colo_ttl_ms, 0, "the colo tier is opt-in");
    assert_eq!(
        config.lookup.origin_url.as_deref(),
        Some("https://origin.example/items")
    );

    let mut pairs = GOOD.to_vec();
    pairs.extend([
        ("DEMO_ORIGIN_FAILURE_RATE", "1.5"),
        ("ORIGIN_URL", "ftp://x"),
        ("CACHE_TTL_MS", "0"),
        ("CACHE_DEADLINE_MS", "fast"),
        ("CACHE_COLO_TTL_MS", "300001"),
    ]);
    let err = Config::from_vars(vars(&pairs)).unwrap_err();
    let names: Vec<&str> = err.problems.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "DEMO_ORIGIN_FAILURE_RATE",
            "ORIGIN_URL",
            "CACHE_TTL_MS",
            "CACHE_DEADLINE_MS",
            "CACHE_COLO_TTL_MS"
        ]
    );
}

#[test]
fn ratelimit_settings_are_validated_with_the_rest() {
    let config = Config::from_vars(vars(GOOD)).unwrap();
    assert_eq!(
        config.ratelimit.policies.len(),
        6,
        "the demo's policies and `api`"
    );
    assert_eq!(
        config.ratelimit.routes.policy_for(Group::Lookup),
        Some("api")
    );
    assert_eq!(config.ratelimit.timeout_ms, 200);

    let mut pairs = GOOD.to_vec();
    pairs.extend([
        ("RATELIMIT_POLICIES", "{not json"),
        ("RATELIMIT_FAILURE", "sometimes"),
        ("RATELIMIT_TIMEOUT_MS", "0"),
        ("RATELIMIT_LEGACY_HEADERS", "yes please"),
        ("RATELIMIT_ROUTES", r#"{"lookup": "missing"}"#),
        (TRUSTED_HEADER_VAR, "x forwarded for"),
    ]);
    let err = Config::from_vars(vars(&pairs)).unwrap_err();
    let names: Vec<&str> = err.problems.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "RATELIMIT_POLICIES",
            "RATELIMIT_FAILURE",
            "RATELIMIT_TIMEOUT_MS",
            "RATELIMIT_LEGACY_HEADERS",
            "RATELIMIT_ROUTES",
            TRUSTED_HEADER_VAR
        ]
    );
}

#[test]
fn policies_without_api_get_the_default_route_policy_unless_routes_are_set() {
    let custom = r#"[{"name": "uploads", "limit": 3, "period_s": 60}]"#;
    let mut pairs = GOOD.to_vec();
    pairs.push(("RATELIMIT_POLICIES", custom));
    let config = Config::from_vars(vars(&pairs)).unwrap();
    let names: Vec<&str> = config
        .ratelimit
        .policies
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(names, ["uploads", "api"]);
    assert_eq!(
        config.ratelimit.routes.policy_for(Group::Session),
        Some("api")
    );

    pairs.push(("RATELIMIT_ROUTES", r#"{"session": "uploads"}"#));
    let config = Config::from_vars(vars(&pairs)).unwrap();
    assert_eq!(
        config.ratelimit.policies.len(),
        1,
        "nothing added when the routes are set"
    );
    assert_eq!(config.ratelimit.routes.policy_for(Group::Lookup), None);
}

#[test]
fn bad_origins_are_explained() {
    for bad in [
        "*",
        "null",
        "app.example.com",
        "https://",
        "https://*.example.com",
        "https://a.example/x",
        "https://a.example?x",
        "https://a.example:0",
        "https://a.example:99999",
        "https://a.example:port",
        "https://user@a.example",
        "https://a_b.example",
        "https://[::1",
        "https://[::1]x",
    ] {
        let mut pairs = GOOD.to_vec();
        pairs.push((CORS_VAR, bad));
        let err = Config::from_vars(vars(&pairs)).unwrap_err();
        assert_eq!(err.problems.len(), 1, "{bad}: {err}");
        assert_eq!(err.problems[0].0, CORS_VAR);
        assert!(err.problems[0].1.contains(bad), "{bad}: {err}");
    }
}

#[test]
fn a_credential_in_a_url_variable_is_named_but_never_repeated() {
    const PASSWORD: &str = "AZx9-pa55word";
    let cases = [
        (
            URL_VAR,
            format!("redis://default:{PASSWORD}@eu1.example.io:6379"),
        ),
        (
            URL_VAR,
            format!("https://default:{PASSWORD}@eu1.example.io"),
        ),
        (
            ORIGIN_URL_VAR,
            format!("https://api:{PASSWORD}@origin.example/items"),
        ),
        (
            ORIGIN_URL_VAR,
            format!("rediss://:{PASSWORD}@origin.example:6380"),
        ),
    ];
    for (var, url) in cases {
        let mut pairs = GOOD.to_vec();
        pairs.retain(|(name, _)| *name != var);
        pairs.push((var, url.as_str()));
        let err = Config::from_vars(vars(&pairs)).unwrap_err();
        assert_eq!(err.problems.len(), 1, "{err}");
        assert_eq!(err.problems[0].0, var);
        let text = err.to_string();
        assert!(text.contains(var), "{text}");
        assert!(!text.contains(PASSWORD), "{text}");
        assert!(!format!("{err:?}").contains(PASSWORD), "{err:?}");
    }
}

#[test]
fn debug_shows_no_token() {
    let mut pairs = GOOD.to_vec();
    pairs.push((METRICS_TOKEN_VAR, "metrics-SECRET"));
    let config = Config::from_vars(vars(&pairs)).unwrap();
    let shown = format!("{config:?}");
    assert!(shown.contains("eu1.example.io"), "{shown}");
    assert!(!shown.contains("secret-token"), "{shown}");
    assert!(!shown.contains("metrics-SECRET"), "{shown}");
}

#[test]
fn switches_take_the_same_words() {
    for var in [SESSION_INSECURE_VAR, LEGACY_HEADERS_VAR, LEASES_VAR] {
        for (text, expected) in [
            ("true", Some(true)),
            ("1", Some(true)),
            ("yes", Some(true)),
            ("on", Some(true)),
            (" false ", Some(false)),
            ("0", Some(false)),
            ("no", Some(false)),
            ("off", Some(false)),
            ("enabled", None),
            ("TRUE", None),
        ] {
            let mut pairs = GOOD.to_vec();
            pairs.push((var, text));
            match (Config::from_vars(vars(&pairs)), expected) {
                (Ok(config), Some(on)) => {
                    let read = match var {
                        SESSION_INSECURE_VAR => config.session.insecure_cookie,
                        LEASES_VAR => config.ratelimit.leases,
                        _ => config.ratelimit.legacy_headers,
                    };
                    assert_eq!(read, on, "{var}={text}");
                }
                (Err(err), None) => assert_eq!(err.problems[0].0, var, "{var}={text}"),
                (result, _) => panic!("{var}={text}: {result:?}"),
            }
        }
    }
}
