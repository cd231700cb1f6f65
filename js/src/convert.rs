//! Values across the boundary: options objects in (serde-wasm-bindgen, with the argument named in every
//! error), results out (plain objects), application data through `JSON.stringify` / `JSON.parse`
//! semantics, and type checks that turn a wrong argument into an `InvalidArgumentError` rather than a
//! coercion or a trap.

use js_sys::{Array, JSON, Object, Promise};
use serde::Serialize;
use serde::de::DeserializeOwned;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::error::{Described, from_redge, to_js};

/// A rejected call: the JavaScript error to throw.
pub type JsResult<T> = Result<T, JsValue>;

/// `typeof`, with `null` and arrays told apart, for messages.
pub fn type_name(value: &JsValue) -> &'static str {
    if value.is_null() {
        "null"
    } else if value.is_undefined() {
        "undefined"
    } else if Array::is_array(value) {
        "an array"
    } else if value.is_string() {
        "a string"
    } else if value.as_f64().is_some() {
        "a number"
    } else if value.as_bool().is_some() {
        "a boolean"
    } else if value.is_bigint() {
        "a bigint"
    } else if value.is_function() {
        "a function"
    } else if value.is_symbol() {
        "a symbol"
    } else {
        "an object"
    }
}

/// An `InvalidArgumentError`.
pub fn invalid(what: &str, why: impl std::fmt::Display) -> JsValue {
    to_js(&Described::invalid(what, why))
}

/// The error for a redge error.
pub fn redge_error(error: &redge::Error) -> JsValue {
    from_redge(error)
}

/// Reads an options object. `undefined` and `null` read as `{}` when `optional`.
pub fn options<T: DeserializeOwned>(value: JsValue, what: &str, optional: bool) -> JsResult<T> {
    let value = if optional && (value.is_undefined() || value.is_null()) {
        Object::new().into()
    } else {
        value
    };
    if !value.is_object() || Array::is_array(&value) || value.is_function() {
        return Err(invalid(
            what,
            format!("expected an options object, got {}", type_name(&value)),
        ));
    }
    // serde-wasm-bindgen reads only the fields it knows: refuse the others here, so a typo is an error.
    let known = crate::fields::field_names::<T>();
    for key in Object::keys(value.unchecked_ref::<Object>()).iter() {
        let key = key.as_string().unwrap_or_default();
        if !known.contains(&key.as_str()) {
            let expected: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
            return Err(invalid(
                what,
                format!(
                    "unknown field `{key}`, expected one of {}",
                    expected.join(", ")
                ),
            ));
        }
    }
    serde_wasm_bindgen::from_value(value).map_err(|e| invalid(what, e))
}

/// A required string argument.
pub fn string(value: &JsValue, what: &str) -> JsResult<String> {
    value
        .as_string()
        .ok_or_else(|| invalid(what, format!("expected a string, got {}", type_name(value))))
}

/// A string argument that may be `null` or `undefined` (a missing cookie).
pub fn optional_string(value: &JsValue, what: &str) -> JsResult<Option<String>> {
    if value.is_undefined() || value.is_null() {
        Ok(None)
    } else {
        string(value, what).map(Some)
    }
}

/// Application data as JSON: what `JSON.stringify` makes of it (so `toJSON`, dates and cycles behave as
/// in JavaScript; a cycle or a `BigInt` is an error, never a deep recursion in wasm).
pub fn json(value: &JsValue, what: &str) -> JsResult<serde_json::Value> {
    let text = JSON::stringify(value).map_err(|e| {
        invalid(
            what,
            format!("it cannot be turned into JSON: {}", message(&e)),
        )
    })?;
    let Some(text) = text.as_string() else {
        return Err(invalid(
            what,
            format!("{} cannot be stored as JSON", type_name(value)),
        ));
    };
    serde_json::from_str(&text).map_err(|e| invalid(what, format!("it is not storable JSON: {e}")))
}

/// A result as a plain object (`null` for `None`, objects for maps).
pub fn to_value<T: Serialize>(value: &T) -> JsResult<JsValue> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| {
            to_js(&Described {
                code: "REDGE_INTERNAL",
                ..Described::invalid("result", e)
            })
        })
}

/// The `message` of a thrown value, or its string form.
pub fn message(error: &JsValue) -> String {
    js_sys::Reflect::get(error, &JsValue::from_str("message"))
        .ok()
        .and_then(|m| m.as_string())
        .or_else(|| error.as_string())
        .unwrap_or_else(|| format!("a thrown {}", type_name(error)))
}

/// Runs `future` as a Promise.
pub fn promise<F>(future: F) -> Promise
where
    F: std::future::Future<Output = JsResult<JsValue>> + 'static,
{
    future_to_promise(future)
}
