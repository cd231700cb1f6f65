//! Replies: [`Reply`] keeps bytes as bytes; [`FromReply`] converts to Rust types without ever panicking.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{BuildHasher, Hash};

/// A decoded Redis reply, in RESP2 shapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `nil`.
    Nil,
    /// An integer reply.
    Int(i64),
    /// A simple-string status such as `OK`.
    Status(String),
    /// A bulk string, as raw bytes.
    Data(Vec<u8>),
    /// An array (any depth).
    Array(Vec<Reply>),
    /// An error nested inside a reply (for example one entry of a pipeline or transaction).
    Error(String),
}

impl Reply {
    /// A short description of the reply's shape, for error messages.
    pub fn shape(&self) -> String {
        match self {
            Reply::Nil => "nil".into(),
            Reply::Int(n) => format!("integer {n}"),
            Reply::Status(s) => format!("status {s:?}"),
            Reply::Data(d) => format!("{} bytes of data", d.len()),
            Reply::Array(a) => format!("array of {}", a.len()),
            Reply::Error(e) => format!("error {e:?}"),
        }
    }
}

/// The reply had another shape than the one asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// What was asked for.
    pub expected: &'static str,
    /// What the reply was.
    pub actual: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "expected {}, got {}", self.expected, self.actual)
    }
}

fn mismatch<T>(expected: &'static str, reply: &Reply) -> Result<T, Mismatch> {
    Err(Mismatch {
        expected,
        actual: reply.shape(),
    })
}

/// Conversion from a [`Reply`] into a Rust type.
pub trait FromReply: Sized {
    /// Converts, or says what did not fit.
    fn from_reply(reply: Reply) -> Result<Self, Mismatch>;
}

impl FromReply for Reply {
    fn from_reply(reply: Reply) -> Result<Self, Mismatch> {
        Ok(reply)
    }
}

impl FromReply for () {
    fn from_reply(reply: Reply) -> Result<Self, Mismatch> {
        match reply {
            Reply::Error(_) => mismatch("any reply", &reply),
            _ => Ok(()),
        }
    }
}

impl FromReply for i64 {
    fn from_reply(reply: Reply) -> Result<Self, Mismatch> {
        match &reply {
            Reply::Int(n) => Ok(*n),
            Reply::Data(d) => parse_text(d).map_or_else(|| mismatch("an integer", &reply), Ok),
            _ => mismatch("an integer", &reply),
        }
    }
}

/// Integers narrower than or unsigned unlike `i64`: converted through `i64`, refusing values out of range.
macro_rules! int_reply {
    ($($t:ty => $expected:literal),*) => {$(
        impl FromReply for $t {
            fn from_reply(reply: Reply) -> Result<Self, Mismatch> {
                let shape = reply.shape();
                let wide = i64::from_reply(reply).map_err(|m| Mismatch { expected: $expected, actual: m.actual })?;
                <$t>::try_from(wide).map_err(|_| Mismatch { expected: $expected, actual: shape })
            }
        }
    )*};
}
int_reply!(i32 => "a 32-bit integer", u32 => "an unsigned 32-bit integer", usize => "a non-negative integer");

impl FromReply for u64 {
    fn from_reply(reply: Reply) -> Result<Self, Mismatch> {
        match &reply {
            Reply::Int(n) => {
                u64::try_from(*n).map_or_else(|_| mismatch("an unsigned integer", &reply), Ok)
            }
            Reply::Data(d) => {
                parse_text(d).map_or_else(|| mismatch("an unsigned integer", &reply), Ok)
            }
            _ => mismatch("an unsigned integer", &reply),
        }
    }
}

impl FromReply for f64 {
    fn from_reply(reply: Reply) -> Result<Self, Mismatch> {
        match &reply {
            Reply::Int(n) => Ok(*n as f64),
            // Redis writes infinities as `inf`, `-inf` (and accepts `+inf`); Rust parses all three.
            Reply::Data(d) => parse_text::<f64>(d)
                .filter(|f| !f.is_nan())
                .map_or_else(|| mismatch("a number", &reply), Ok),
            _ => mismatch("a number", &reply),
        }
    }
}

/// `1`/`0` (EXISTS, SISMEMBER, EXPIRE), `OK`/nil (SET NX), a Lua `true`/`false` (1/nil).
impl FromReply for bool {
    fn from_reply(reply: Reply) -> Result<Self, Mismatch> {
        match &reply {
            Reply::Nil => Ok(false),
            Reply::Int(n) => Ok(*n != 0),
            Reply::Status(s) if s == "OK" => Ok(true),
            Reply::Data(d) if d == b"1" || d == b"OK" => Ok(true),
            Reply::Data(d) if d == b"0" => Ok(false),
            _ => mismatch("a boolean (1, 0, OK or nil)", &reply),
        }
    }
}

fn parse_text<N: std::str::FromStr>(bytes: &[u8]) -> Option<N> {
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

impl FromReply for Vec<u8> {
    fn from_reply(reply: Reply) -> Result<Self, Mismatch> {
        match reply {
            Reply::Data(d) => Ok(d),
            Reply::Status(s) => Ok(s.into_bytes()),
            Reply::Int(n) => Ok(n.to_string().into_bytes()),
            other => mismatch("bytes", &other),
        }
    }
}

impl FromReply for String {
    fn from_reply(reply: Reply) -> Result<Self, Mismatch> {
        match reply {
            Reply::Data(d) => String::from_utf8(d).map_err(|e| Mismatch {
                expected: "a UTF-8 string",
                actual: format!("{} bytes that are not UTF-8", e.as_bytes().len()),
            }),
            Reply::Status(s) => Ok(s),
            Reply::Int(n) => Ok(n.to_string()),
            other => mismatch("a string", &other),
        }
    }
}

impl<T: FromReply> FromReply for Option<T> {
    fn from_reply(reply: Reply) -> Result<Self, Mismatch> {
        match reply {
            Reply::Nil => Ok(None),
            other => T::from_reply(other).map(Some),
        }
    }
}

fn array(reply: Reply, expected: &'static str) -> Result<Vec<Reply>, Mismatch> {
    match reply {
        Reply::Array(items) => Ok(items),
        // An empty result (no members, no fields) is nil in a few commands' RESP2 replies.
        Reply::Nil => Ok(Vec::new()),
        other => mismatch(expected, &other),
    }
}

/// An array, each element converted.
impl<T: FromReply> FromReply for Vec<T> {
    fn from_reply(reply: Reply) -> Result<Self, Mismatch> {
        array(reply, "an array")?
            .into_iter()
            .map(T::from_reply)
            .collect()
    }
}

macro_rules! tuple_reply {
    ($len:literal => $expected:literal: $($t:ident),+) => {
        /// An array of exactly this many elements.
        impl<$($t: FromReply),+> FromReply for ($($t,)+) {
            fn from_reply(reply: Reply) -> Result<Self, Mismatch> {
                let items = array(reply, $expected)?;
                if items.len() != $len {
                    return Err(Mismatch { expected: $expected, actual: format!("array of {}", items.len()) });
                }
                let mut items = items.into_iter();
                Ok(($($t::from_reply(items.next().unwrap_or(Reply::Nil))?,)+))
            }
        }
    };
}
tuple_reply!(1 => "an array of 1": A);
tuple_reply!(2 => "an array of 2": A, B);
tuple_reply!(3 => "an array of 3": A, B, C);
tuple_reply!(4 => "an array of 4": A, B, C, D);

fn flat_pairs<K: FromReply, V: FromReply>(reply: Reply) -> Result<Vec<(K, V)>, Mismatch> {
    const EXPECTED: &str = "a flat array of pairs";
    let items = array(reply, EXPECTED)?;
    if items.len() % 2 != 0 {
        return Err(Mismatch {
            expected: EXPECTED,
            actual: format!("array of {} (odd)", items.len()),
        });
    }
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut items = items.into_iter();
    while let (Some(k), Some(v)) = (items.next(), items.next()) {
        out.push((K::from_reply(k)?, V::from_reply(v)?));
    }
    Ok(out)
}

/// Ordered pairs from a flat array `[k1, v1, k2, v2]` (ZRANGE ... WITHSCORES, HGETALL in order).
#[derive(Debug, Clone, PartialEq)]
pub struct Pairs<K, V>(pub Vec<(K, V)>);

impl<K: FromReply, V: FromReply> FromReply for Pairs<K, V> {
    fn from_reply(reply: Reply) -> Result<Self, Mismatch> {
        flat_pairs(reply).map(Pairs)
    }
}

/// A map from a flat array `[k1, v1, k2, v2]` (HGETALL, CONFIG GET); a repeated key keeps its last value.
impl<K: FromReply + Eq + Hash, V: FromReply, S: BuildHasher + Default> FromReply
    for HashMap<K, V, S>
{
    fn from_reply(reply: Reply) -> Result<Self, Mismatch> {
        Ok(flat_pairs(reply)?.into_iter().collect())
    }
}

/// A sorted map from a flat array `[k1, v1, k2, v2]`.
impl<K: FromReply + Ord, V: FromReply> FromReply for BTreeMap<K, V> {
    fn from_reply(reply: Reply) -> Result<Self, Mismatch> {
        Ok(flat_pairs(reply)?.into_iter().collect())
    }
}

/// A value stored as JSON text, read (and written, with [`Json::to_arg`]) through serde.
///
/// Nothing is JSON-parsed unless asked: `GET` of `"123"` is the string `"123"`, not a number, unless the
/// caller reads it as `Json<i64>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Json<T>(pub T);

impl<T: serde::de::DeserializeOwned> FromReply for Json<T> {
    fn from_reply(reply: Reply) -> Result<Self, Mismatch> {
        let bytes = match reply {
            Reply::Data(d) => d,
            Reply::Status(s) => s.into_bytes(),
            other => return mismatch("JSON text", &other),
        };
        serde_json::from_slice(&bytes)
            .map(Json)
            .map_err(|e| Mismatch {
                expected: "JSON text of the requested type",
                actual: format!("{} bytes that do not parse: {e}", bytes.len()),
            })
    }
}

impl<T: serde::Serialize> Json<T> {
    /// The value as JSON text, to pass as a command argument.
    ///
    /// # Errors
    /// [`crate::Error::InvalidArgument`] when serde cannot serialize the value (a map with non-string keys).
    pub fn to_arg(&self) -> crate::Result<String> {
        serde_json::to_string(&self.0).map_err(|e| crate::Error::InvalidArgument(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(s: &str) -> Reply {
        Reply::Data(s.as_bytes().to_vec())
    }

    #[test]
    fn converts_common_shapes() {
        assert_eq!(i64::from_reply(Reply::Int(7)), Ok(7));
        assert_eq!(i64::from_reply(data("-12")), Ok(-12));
        assert_eq!(
            String::from_reply(Reply::Status("OK".into())),
            Ok("OK".into())
        );
        assert_eq!(Option::<String>::from_reply(Reply::Nil), Ok(None));
        assert_eq!(
            Vec::<u8>::from_reply(Reply::Data(vec![0xff, 0])),
            Ok(vec![0xff, 0])
        );
    }

    #[test]
    fn numbers_check_their_range() {
        assert_eq!(u64::from_reply(Reply::Int(5)), Ok(5));
        assert!(u64::from_reply(Reply::Int(-1)).is_err());
        assert_eq!(u64::from_reply(data("18446744073709551615")), Ok(u64::MAX));
        assert_eq!(i32::from_reply(Reply::Int(-5)), Ok(-5));
        let err = i32::from_reply(Reply::Int(1 << 40)).unwrap_err();
        assert_eq!(err.expected, "a 32-bit integer");
        assert!(usize::from_reply(Reply::Int(-2)).is_err());
        assert_eq!(f64::from_reply(data("1.5")), Ok(1.5));
        assert_eq!(f64::from_reply(data("-inf")), Ok(f64::NEG_INFINITY));
        assert_eq!(f64::from_reply(Reply::Int(3)), Ok(3.0));
        assert!(f64::from_reply(data("nan")).is_err());
        assert!(f64::from_reply(data("abc")).is_err());
    }

    #[test]
    fn booleans_from_redis_idioms() {
        assert_eq!(bool::from_reply(Reply::Int(1)), Ok(true));
        assert_eq!(bool::from_reply(Reply::Int(0)), Ok(false));
        assert_eq!(bool::from_reply(Reply::Status("OK".into())), Ok(true));
        assert_eq!(bool::from_reply(Reply::Nil), Ok(false));
        assert_eq!(bool::from_reply(data("OK")), Ok(true));
        assert!(bool::from_reply(data("yes")).is_err());
    }

    #[test]
    fn arrays_tuples_and_maps() {
        let flat = Reply::Array(vec![data("a"), data("1"), data("b"), data("2")]);
        let map: HashMap<String, i64> = FromReply::from_reply(flat.clone()).unwrap();
        assert_eq!(map.get("b"), Some(&2));
        let sorted: BTreeMap<String, String> = FromReply::from_reply(flat.clone()).unwrap();
        assert_eq!(sorted.keys().collect::<Vec<_>>(), ["a", "b"]);
        let pairs: Pairs<String, f64> = FromReply::from_reply(flat.clone()).unwrap();
        assert_eq!(pairs.0, [("a".into(), 1.0), ("b".into(), 2.0)]);
        let all: Vec<String> = FromReply::from_reply(flat.clone()).unwrap();
        assert_eq!(all.len(), 4);
        let quad: (String, i64, String, u32) = FromReply::from_reply(flat).unwrap();
        assert_eq!(quad, ("a".into(), 1, "b".into(), 2));
        let time: (u64, u64) =
            FromReply::from_reply(Reply::Array(vec![data("1700000000"), data("5")])).unwrap();
        assert_eq!(time, (1_700_000_000, 5));
        let odd = Reply::Array(vec![data("a")]);
        assert!(HashMap::<String, String>::from_reply(odd.clone()).is_err());
        let err = <(String, String)>::from_reply(odd).unwrap_err();
        assert_eq!(err.to_string(), "expected an array of 2, got array of 1");
        assert_eq!(Vec::<String>::from_reply(Reply::Nil), Ok(vec![]));
        let mixed = Reply::Array(vec![Reply::Nil, data("x")]);
        let opts: Vec<Option<String>> = FromReply::from_reply(mixed).unwrap();
        assert_eq!(opts, [None, Some("x".into())]);
    }

    #[test]
    fn json_only_when_asked() {
        #[derive(serde::Deserialize, serde::Serialize, Debug, PartialEq)]
        struct User {
            name: String,
        }
        assert_eq!(String::from_reply(data("123")), Ok("123".into()));
        assert_eq!(Json::<i64>::from_reply(data("123")), Ok(Json(123)));
        let user: Json<User> = FromReply::from_reply(data(r#"{"name":"ada"}"#)).unwrap();
        assert_eq!(user.0.name, "ada");
        assert_eq!(Json(&user.0).to_arg().unwrap(), r#"{"name":"ada"}"#);
        let err = Json::<User>::from_reply(data("{")).unwrap_err();
        assert!(err.actual.contains("do not parse"), "{err}");
    }

    #[test]
    fn mismatches_name_both_shapes() {
        let err = i64::from_reply(Reply::Array(vec![])).unwrap_err();
        assert_eq!(err.to_string(), "expected an integer, got array of 0");
        let err = String::from_reply(Reply::Data(vec![0xff])).unwrap_err();
        assert_eq!(err.expected, "a UTF-8 string");
        assert!(i64::from_reply(data("12x")).is_err());
        assert!(String::from_reply(Reply::Error("ERR x".into())).is_err());
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod proptests {
    use super::*;
    use crate::client::protocol::decode_value;
    use proptest::prelude::*;
    use serde_json::Value;

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            ".{0,12}".prop_map(Value::String),
            prop_oneof![Just("OK"), Just("T0s="), Just("MQ=="), Just("LWluZg==")]
                .prop_map(|s| Value::String(s.into())),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map("(error|result|x)", inner, 0..3)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn convert_all(reply: Reply) {
        let _ = i64::from_reply(reply.clone());
        let _ = u64::from_reply(reply.clone());
        let _ = i32::from_reply(reply.clone());
        let _ = usize::from_reply(reply.clone());
        let _ = f64::from_reply(reply.clone());
        let _ = bool::from_reply(reply.clone());
        let _ = String::from_reply(reply.clone());
        let _ = Vec::<u8>::from_reply(reply.clone());
        let _ = Option::<Vec<Option<String>>>::from_reply(reply.clone());
        let _ = <(String, i64)>::from_reply(reply.clone());
        let _ = <(Reply, f64, bool, Vec<u8>)>::from_reply(reply.clone());
        let _ = HashMap::<String, Vec<i64>>::from_reply(reply.clone());
        let _ = BTreeMap::<Vec<u8>, f64>::from_reply(reply.clone());
        let _ = Pairs::<String, f64>::from_reply(reply.clone());
        let _ = Json::<serde_json::Value>::from_reply(reply.clone());
        let _ = <()>::from_reply(reply);
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 512,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn arbitrary_json_replies_never_panic(value in arb_json(), base64 in any::<bool>()) {
            if let Ok(reply) = decode_value(&value, base64) {
                let _ = reply.shape();
                convert_all(reply);
            }
            let body = serde_json::json!({ "result": value.clone() }).to_string();
            let _ = crate::client::protocol::decode_response(200, body.as_bytes(), base64);
            let batch = Value::Array(vec![value]).to_string();
            let _ = crate::client::protocol::decode_batch(200, batch.as_bytes(), base64);
        }
    }
}
