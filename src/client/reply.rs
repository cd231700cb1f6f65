//! Replies: [`Reply`] keeps bytes as bytes; [`FromReply`] converts to Rust types without ever panicking.

use std::fmt;

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
            Reply::Data(d) => std::str::from_utf8(d)
                .ok()
                .and_then(|s| s.parse().ok())
                .map_or_else(|| mismatch("an integer", &reply), Ok),
            _ => mismatch("an integer", &reply),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_common_shapes() {
        assert_eq!(i64::from_reply(Reply::Int(7)), Ok(7));
        assert_eq!(i64::from_reply(Reply::Data(b"-12".to_vec())), Ok(-12));
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
    fn mismatches_name_both_shapes() {
        let err = i64::from_reply(Reply::Array(vec![])).unwrap_err();
        assert_eq!(err.to_string(), "expected an integer, got array of 0");
        let err = String::from_reply(Reply::Data(vec![0xff])).unwrap_err();
        assert_eq!(err.expected, "a UTF-8 string");
        assert!(i64::from_reply(Reply::Data(b"12x".to_vec())).is_err());
    }
}
