//! The field names a serde struct reads, to refuse unknown ones: serde-wasm-bindgen looks up only the
//! fields it knows, so `deny_unknown_fields` alone never sees a typo in a JavaScript object.

use serde::de::DeserializeOwned;

/// The field names `T` reads, after renaming (`timeoutMs`, not `timeout_ms`); empty for a type that
/// is not a struct.
pub fn field_names<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Names(&'static [&'static str]);
    #[derive(Debug)]
    struct Stop;
    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("field names read")
        }
    }
    impl std::error::Error for Stop {}
    impl serde::de::Error for Stop {
        fn custom<M: std::fmt::Display>(_: M) -> Self {
            Stop
        }
    }
    struct Probe<'a>(&'a mut Names);
    impl<'de> serde::Deserializer<'de> for Probe<'_> {
        type Error = Stop;
        fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_struct<V: serde::de::Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            self.0.0 = fields;
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }
    let mut names = Names(&[]);
    let _ = T::deserialize(Probe(&mut names));
    names.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::{ClientOptions, LimitOptions, SignInOptions};

    #[test]
    fn field_names_are_the_camel_case_ones() {
        assert_eq!(
            field_names::<ClientOptions>(),
            ["url", "token", "timeoutMs", "retries", "retryWrites"]
        );
        assert!(field_names::<LimitOptions>().contains(&"cost"));
        assert_eq!(field_names::<SignInOptions>(), ["replacing"]);
        assert!(field_names::<String>().is_empty());
    }
}
