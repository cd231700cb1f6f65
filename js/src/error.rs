//! How a [`redge::Error`] becomes a JavaScript error: which class, which `code`, which extra properties.
//!
//! The classes themselves are JavaScript (`npm/errors.js`, so that `instanceof` works and stack traces
//! look native); each entry point hands a factory to the wasm module once at load time
//! (`__redgeSetErrorFactory`). Without one (someone importing the raw bindings), errors are plain `Error`
//! objects with the same `name`, `code` and properties.
//!
//! | class | codes |
//! |---|---|
//! | `ConfigError` | `REDGE_CONFIG` |
//! | `InvalidArgumentError` | `REDGE_INVALID_ARGUMENT`, `REDGE_TOO_LARGE`, `REDGE_INSUFFICIENT_CAPACITY` |
//! | `UnavailableError` | `REDGE_UNREACHABLE`, `REDGE_TIMEOUT`, `REDGE_UNAVAILABLE` (HTTP 5xx) |
//! | `HttpError` | `REDGE_UNAUTHORIZED` (HTTP 401), `REDGE_HTTP` (other statuses) |
//! | `RedisError` | `REDGE_REDIS` |
//! | `OriginError` | `REDGE_ORIGIN` |
//! | `RedgeError` (the base of all) | `REDGE_PROTOCOL`, `REDGE_REPLY_TYPE`, `REDGE_INTERNAL` |

use serde::Serialize;

/// Everything a JavaScript error is built from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Described {
    /// The class name (`InvalidArgumentError` ...).
    #[serde(skip)]
    pub class: &'static str,
    /// The stable `code` property.
    pub code: &'static str,
    /// The message.
    #[serde(skip)]
    pub message: String,
    /// Whether sending the same request again may succeed.
    pub retryable: bool,
    /// The HTTP status, for HTTP errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The rate-limit policy, for `REDGE_INSUFFICIENT_CAPACITY`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// The cost asked for and the most the policy allows at once, for `REDGE_INSUFFICIENT_CAPACITY`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<f64>,
    /// See `cost`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub capacity: Option<f64>,
}

impl Described {
    fn new(class: &'static str, code: &'static str, message: String) -> Self {
        Described {
            class,
            code,
            message,
            retryable: false,
            status: None,
            policy: None,
            cost: None,
            capacity: None,
        }
    }

    /// A bad argument from JavaScript: `what` names it, `why` says what is wrong and what is expected.
    pub fn invalid(what: &str, why: impl std::fmt::Display) -> Self {
        Self::new(
            "InvalidArgumentError",
            "REDGE_INVALID_ARGUMENT",
            format!("{what}: {why}"),
        )
    }

    /// A configuration problem (a missing environment variable, an impossible quota).
    pub fn config(message: impl Into<String>) -> Self {
        Self::new("ConfigError", "REDGE_CONFIG", message.into())
    }

    /// A concurrent lookup's origin call failed; this lookup only knows its message.
    pub fn origin(message: impl Into<String>) -> Self {
        Self::new("OriginError", "REDGE_ORIGIN", message.into())
    }
}

/// The class, code and properties of `error`.
pub fn describe(error: &redge::Error) -> Described {
    use redge::Error as E;
    let message = error.to_string();
    let mut d = match error {
        E::Config(m) => Described::config(format!("invalid configuration: {m}")),
        E::InvalidArgument(_) => {
            Described::new("InvalidArgumentError", "REDGE_INVALID_ARGUMENT", message)
        }
        E::TooLarge(_) => Described::new("InvalidArgumentError", "REDGE_TOO_LARGE", message),
        E::InsufficientCapacity {
            policy,
            cost,
            capacity,
        } => Described {
            policy: Some(policy.clone()),
            cost: Some(*cost as f64),
            capacity: Some(*capacity as f64),
            ..Described::new(
                "InvalidArgumentError",
                "REDGE_INSUFFICIENT_CAPACITY",
                message,
            )
        },
        E::Transport(_) => Described::new("UnavailableError", "REDGE_UNREACHABLE", message),
        E::Timeout(_) => Described::new("UnavailableError", "REDGE_TIMEOUT", message),
        E::Http { status, .. } => {
            let (class, code) = match status {
                500..=599 => ("UnavailableError", "REDGE_UNAVAILABLE"),
                401 => ("HttpError", "REDGE_UNAUTHORIZED"),
                _ => ("HttpError", "REDGE_HTTP"),
            };
            let message = if *status == 401 {
                format!("{message} (check the token: UPSTASH_REDIS_REST_TOKEN)")
            } else {
                message
            };
            Described {
                status: Some(*status),
                ..Described::new(class, code, message)
            }
        }
        E::Redis(_) => Described::new("RedisError", "REDGE_REDIS", message),
        E::Protocol(_) => Described::new("RedgeError", "REDGE_PROTOCOL", message),
        E::Type { .. } => Described::new("RedgeError", "REDGE_REPLY_TYPE", message),
        E::Conflict(_) => Described::new("RedgeError", "REDGE_CONFLICT", message),
        _ => Described::new("RedgeError", "REDGE_INTERNAL", message),
    };
    d.retryable = error.is_retryable();
    d
}

#[cfg(target_arch = "wasm32")]
pub use js::{from_redge, set_error_factory, to_js};

#[cfg(target_arch = "wasm32")]
mod js {
    use std::cell::RefCell;

    use js_sys::{Function, Reflect};
    use wasm_bindgen::prelude::*;

    use super::{Described, describe};

    thread_local! {
        static FACTORY: RefCell<Option<Function>> = const { RefCell::new(None) };
    }

    /// Called once by each entry point with `(className, message, properties) => Error`.
    #[wasm_bindgen(js_name = "__redgeSetErrorFactory", skip_typescript)]
    pub fn set_error_factory(factory: JsValue) {
        let factory = factory.dyn_into::<Function>().ok();
        FACTORY.with(|f| *f.borrow_mut() = factory);
    }

    /// The JavaScript error for `d`: built by the registered factory, or a plain `Error` with the same
    /// name, code and properties.
    pub fn to_js(d: &Described) -> JsValue {
        let properties = serde_wasm_bindgen::to_value(d).unwrap_or(JsValue::UNDEFINED);
        let class = JsValue::from_str(d.class);
        let message = JsValue::from_str(&d.message);
        let made = FACTORY.with(|f| {
            f.borrow().as_ref().and_then(|factory| {
                factory
                    .call3(&JsValue::NULL, &class, &message, &properties)
                    .ok()
            })
        });
        if let Some(error) = made.filter(|e| e.is_object()) {
            return error;
        }
        let error = js_sys::Error::new(&d.message);
        error.set_name(d.class);
        if let Ok(keys) = Reflect::own_keys(&properties) {
            for key in keys.iter() {
                if let Ok(value) = Reflect::get(&properties, &key) {
                    let _ = Reflect::set(&error, &key, &value);
                }
            }
        }
        error.into()
    }

    /// The JavaScript error for a [`redge::Error`].
    pub fn from_redge(error: &redge::Error) -> JsValue {
        to_js(&describe(error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_a_class_and_code() {
        let cases = [
            (
                redge::Error::Config("x".into()),
                "ConfigError",
                "REDGE_CONFIG",
            ),
            (
                redge::Error::InvalidArgument("x".into()),
                "InvalidArgumentError",
                "REDGE_INVALID_ARGUMENT",
            ),
            (
                redge::Error::Transport("refused".into()),
                "UnavailableError",
                "REDGE_UNREACHABLE",
            ),
            (
                redge::Error::Timeout(200),
                "UnavailableError",
                "REDGE_TIMEOUT",
            ),
            (
                redge::Error::Redis("ERR wrong".into()),
                "RedisError",
                "REDGE_REDIS",
            ),
            (
                redge::Error::TooLarge("big".into()),
                "InvalidArgumentError",
                "REDGE_TOO_LARGE",
            ),
            (
                redge::Error::Protocol("junk".into()),
                "RedgeError",
                "REDGE_PROTOCOL",
            ),
            (
                redge::Error::Conflict("busy".into()),
                "RedgeError",
                "REDGE_CONFLICT",
            ),
        ];
        for (error, class, code) in cases {
            let d = describe(&error);
            assert_eq!((d.class, d.code), (class, code), "{error}");
            assert!(!d.message.is_empty());
        }
    }

    #[test]
    fn http_statuses_split_into_unavailable_unauthorized_and_other() {
        let http = |status| redge::Error::Http {
            status,
            message: "nope".into(),
        };
        let d = describe(&http(503));
        assert_eq!(
            (d.class, d.code, d.status, d.retryable),
            ("UnavailableError", "REDGE_UNAVAILABLE", Some(503), true)
        );
        let d = describe(&http(401));
        assert_eq!((d.class, d.code), ("HttpError", "REDGE_UNAUTHORIZED"));
        assert!(
            d.message.contains("UPSTASH_REDIS_REST_TOKEN"),
            "{}",
            d.message
        );
        assert_eq!(describe(&http(413)).code, "REDGE_HTTP");
    }

    #[test]
    fn capacity_errors_carry_their_numbers() {
        let d = describe(&redge::Error::InsufficientCapacity {
            policy: "burst".into(),
            cost: 9,
            capacity: 5,
        });
        assert_eq!(d.code, "REDGE_INSUFFICIENT_CAPACITY");
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"code": "REDGE_INSUFFICIENT_CAPACITY", "retryable": false, "policy": "burst", "cost": 9.0, "capacity": 5.0})
        );
    }

    #[test]
    fn invalid_arguments_name_what_was_wrong() {
        let d = Described::invalid("RateLimiter options", "missing field `policies`");
        assert_eq!(d.message, "RateLimiter options: missing field `policies`");
        assert_eq!(d.code, "REDGE_INVALID_ARGUMENT");
    }
}
