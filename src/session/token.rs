//! Session tokens: `<id>.<secret>`, generated from a cryptographic random source, parsed strictly, and
//! stored only as the SHA-256 of the secret.
//!
//! The id (128 bits: its user's 24-bit tag, then 104 random bits) names the session in Redis keys and
//! in the "my sessions" list; it is public. The tag puts the session in its user's Redis Cluster slot
//! ([`keys`](super::keys)); the random part keeps ids of one user apart (a taken id is never
//! overwritten, and a sign-in has a second candidate), and nothing relies on the id being secret. The
//! secret (256 bits) proves possession; only its SHA-256 is stored, so a dump of Redis yields no usable
//! token. Both halves are unpadded base64url, so a token is exactly [`TOKEN_LEN`] characters from
//! `[A-Za-z0-9_-]` with one `.`: anything else is rejected before a command is built.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use super::keys::{TAG_BYTES, TAG_LEN};
use crate::Result;

/// Bytes in a session id: the user's tag ([`TAG_BYTES`](super::keys::TAG_BYTES)), then random bytes.
/// The secret, not the id, is what must not be guessed: 256 bits, well above OWASP's 64-bit minimum.
pub const ID_BYTES: usize = 16;
/// Random bytes in a session secret: 256 bits.
pub const SECRET_BYTES: usize = 32;
/// Characters of an encoded id (unpadded base64url of [`ID_BYTES`]).
pub const ID_LEN: usize = 22;
/// Characters of an encoded secret (unpadded base64url of [`SECRET_BYTES`]).
pub const SECRET_LEN: usize = 43;
/// Characters of a whole token: id, `.`, secret.
pub const TOKEN_LEN: usize = ID_LEN + 1 + SECRET_LEN;

/// A source of cryptographically secure random bytes.
pub trait Random {
    /// Fills `buf` with random bytes.
    ///
    /// # Errors
    /// [`crate::Error::Config`] when the runtime has no usable source; never falls back to a weak one.
    fn fill(&self, buf: &mut [u8]) -> Result<()>;
}

/// Web Crypto's `crypto.getRandomValues`, available in Workers, browsers, Node and Deno.
#[cfg(target_arch = "wasm32")]
#[derive(Debug, Clone, Copy, Default)]
pub struct WebCrypto;

#[cfg(target_arch = "wasm32")]
impl Random for WebCrypto {
    fn fill(&self, buf: &mut [u8]) -> Result<()> {
        use js_sys::{Function, Reflect, Uint8Array};
        use wasm_bindgen::{JsCast, JsValue};

        let missing = || crate::Error::Config("this runtime has no crypto.getRandomValues".into());
        let crypto = Reflect::get(&js_sys::global(), &JsValue::from_str("crypto"))
            .ok()
            .filter(|c| c.is_object())
            .ok_or_else(missing)?;
        let get_random_values: Function =
            Reflect::get(&crypto, &JsValue::from_str("getRandomValues"))
                .ok()
                .and_then(|f| f.dyn_into().ok())
                .ok_or_else(missing)?;
        let array = Uint8Array::new_with_length(buf.len() as u32);
        get_random_values
            .call1(&crypto, &array)
            .map_err(|_| crate::Error::Config("crypto.getRandomValues failed".into()))?;
        array.copy_to(buf);
        Ok(())
    }
}

/// Web Crypto exists only in a JavaScript runtime: outside wasm32 it fails every time with
/// [`crate::Error::Config`] (never a weaker source), so that Worker code compiles and is unit tested
/// natively, where a test gives the store a [`Random`] of its own.
#[cfg(not(target_arch = "wasm32"))]
#[derive(Debug, Clone, Copy, Default)]
pub struct WebCrypto;

#[cfg(not(target_arch = "wasm32"))]
impl Random for WebCrypto {
    fn fill(&self, _buf: &mut [u8]) -> Result<()> {
        Err(crate::Error::Config(
            "Web Crypto is available only in a JavaScript runtime (wasm32)".into(),
        ))
    }
}

/// Why a string is not a token. The messages never repeat the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    /// No token at all.
    Empty,
    /// Not exactly [`TOKEN_LEN`] bytes long.
    Length(usize),
    /// No `.` between an id of 22 characters and the secret.
    Shape,
    /// A character outside `[A-Za-z0-9_-]`.
    Charset,
    /// Base64url that does not decode canonically (stray trailing bits).
    Encoding,
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::Empty => write!(f, "no session token"),
            TokenError::Length(n) => write!(
                f,
                "a session token has {TOKEN_LEN} characters, this one has {n}"
            ),
            TokenError::Shape => write!(f, "a session token is <id>.<secret>"),
            TokenError::Charset => write!(f, "a session token uses only base64url characters"),
            TokenError::Encoding => write!(f, "a session token is canonical base64url"),
        }
    }
}

impl std::error::Error for TokenError {}

/// A session's public id: 22 base64url characters. Safe to put in keys, logs and responses.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(String);

impl SessionId {
    /// Parses an id with the same strict rules as a token's first half.
    ///
    /// # Errors
    /// [`TokenError`] when the text is not a canonical id.
    pub fn parse(text: &str) -> Result<Self, TokenError> {
        if text.is_empty() {
            return Err(TokenError::Empty);
        }
        if text.len() != ID_LEN {
            return Err(TokenError::Length(text.len()));
        }
        decode_exact::<ID_BYTES>(text)?;
        Ok(SessionId(text.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The tag the id begins with: its user's tag for an id this library issued, the hash tag of its
    /// keys in any case.
    pub fn tag(&self) -> &str {
        self.0.get(..TAG_LEN).unwrap_or(&self.0)
    }

    /// [`SessionId::tag`] as bytes.
    pub fn tag_bytes(&self) -> [u8; TAG_BYTES] {
        let mut out = [0u8; TAG_BYTES];
        // A parsed id is canonical base64url, and its first 4 characters are exactly 3 bytes.
        let _ = URL_SAFE_NO_PAD.decode_slice(self.tag(), &mut out);
        out
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({})", self.0)
    }
}

impl serde::Serialize for SessionId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// A session token: the public id and the secret. Its `Debug` hides the secret; the only way to the
/// secret text is [`Token::expose`], for the cookie.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    id: SessionId,
    secret: [u8; SECRET_BYTES],
}

impl Token {
    /// A fresh token from `random`, its id's tag random too (a store issues tokens with
    /// [`Token::generate_tagged`]).
    ///
    /// # Errors
    /// The random source's error.
    pub fn generate(random: &dyn Random) -> Result<Self> {
        let mut tag = [0u8; TAG_BYTES];
        random.fill(&mut tag)?;
        Self::generate_tagged(random, tag)
    }

    /// A fresh token from `random` whose id begins with `tag` (a user's tag,
    /// [`user_tag_bytes`](super::keys::user_tag_bytes)).
    ///
    /// # Errors
    /// The random source's error.
    pub fn generate_tagged(random: &dyn Random, tag: [u8; TAG_BYTES]) -> Result<Self> {
        let mut id = [0u8; ID_BYTES];
        let mut secret = [0u8; SECRET_BYTES];
        id[..TAG_BYTES].copy_from_slice(&tag);
        random.fill(&mut id[TAG_BYTES..])?;
        random.fill(&mut secret)?;
        Ok(Token {
            id: SessionId(URL_SAFE_NO_PAD.encode(id)),
            secret,
        })
    }

    /// Parses `<id>.<secret>`, checking length, separator, characters and canonical encoding before
    /// anything else looks at it.
    ///
    /// # Errors
    /// [`TokenError`], which never includes the input.
    pub fn parse(text: &str) -> Result<Self, TokenError> {
        if text.is_empty() {
            return Err(TokenError::Empty);
        }
        // Length first: an oversized cookie costs nothing more than this comparison.
        if text.len() != TOKEN_LEN {
            return Err(TokenError::Length(text.len()));
        }
        let (id, secret) = match text.split_at_checked(ID_LEN) {
            Some((id, rest)) => match rest.strip_prefix('.') {
                Some(secret) => (id, secret),
                None => return Err(TokenError::Shape),
            },
            None => return Err(TokenError::Shape),
        };
        decode_exact::<ID_BYTES>(id)?;
        let secret = decode_exact::<SECRET_BYTES>(secret)?;
        Ok(Token {
            id: SessionId(id.to_owned()),
            secret,
        })
    }

    /// The public id.
    pub fn id(&self) -> &SessionId {
        &self.id
    }

    /// The SHA-256 of the secret: what Redis stores.
    pub fn secret_hash(&self) -> SecretHash {
        SecretHash(Sha256::digest(self.secret).into())
    }

    /// The whole token as text, for the cookie. It carries the secret: never log it.
    pub fn expose(&self) -> String {
        format!("{}.{}", self.id, URL_SAFE_NO_PAD.encode(self.secret))
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({}.<secret>)", self.id)
    }
}

/// The SHA-256 of a token's secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretHash([u8; 32]);

impl SecretHash {
    /// Lowercase hex, as stored in Redis.
    pub fn to_hex(self) -> String {
        let mut out = String::with_capacity(64);
        for b in self.0 {
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        out
    }

    /// Whether `stored` (hex, as read back from Redis) is this hash, compared in constant time.
    pub fn matches_hex(&self, stored: &[u8]) -> bool {
        constant_time_eq(self.to_hex().as_bytes(), stored)
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Decodes exactly `N` bytes of canonical unpadded base64url.
fn decode_exact<const N: usize>(text: &str) -> Result<[u8; N], TokenError> {
    if !text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(TokenError::Charset);
    }
    let mut out = [0u8; N];
    match URL_SAFE_NO_PAD.decode_slice(text, &mut out) {
        Ok(n) if n == N => Ok(out),
        _ => Err(TokenError::Encoding),
    }
}

/// Bytes counting up from a seed: a deterministic stand-in for unit tests.
#[cfg(test)]
pub(crate) struct Counter(pub std::cell::Cell<u8>);

#[cfg(test)]
impl Counter {
    pub(crate) fn new(seed: u8) -> Self {
        Counter(std::cell::Cell::new(seed))
    }
}

#[cfg(test)]
impl Random for Counter {
    fn fill(&self, buf: &mut [u8]) -> Result<()> {
        for b in buf {
            *b = self.0.get();
            self.0.set(self.0.get().wrapping_add(1));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> Token {
        Token::generate(&Counter::new(7)).unwrap()
    }

    #[test]
    fn tokens_round_trip_and_have_the_documented_shape() {
        let t = token();
        let text = t.expose();
        assert_eq!(text.len(), TOKEN_LEN);
        assert_eq!(text.as_bytes()[ID_LEN], b'.');
        assert_eq!(t.id().as_str().len(), ID_LEN);
        assert_eq!(Token::parse(&text).unwrap(), t);
        assert_eq!(SessionId::parse(t.id().as_str()).unwrap(), *t.id());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let t = token();
        let secret = t.expose()[ID_LEN + 1..].to_owned();
        let shown = format!("{t:?}");
        assert!(!shown.contains(&secret));
        assert!(shown.contains(t.id().as_str()));
    }

    #[test]
    fn malformed_tokens_are_rejected_with_a_reason() {
        let good = token().expose();
        assert_eq!(Token::parse(""), Err(TokenError::Empty));
        assert_eq!(
            Token::parse(&good[..TOKEN_LEN - 1]),
            Err(TokenError::Length(TOKEN_LEN - 1))
        );
        assert_eq!(
            Token::parse(&"a".repeat(5000)),
            Err(TokenError::Length(5000))
        );
        let no_dot = good.replace('.', "x");
        assert_eq!(Token::parse(&no_dot), Err(TokenError::Shape));
        let mut plus = good.clone().into_bytes();
        plus[3] = b'+';
        assert_eq!(
            Token::parse(std::str::from_utf8(&plus).unwrap()),
            Err(TokenError::Charset)
        );
        // A multi-byte character keeps the byte length but is not base64url, and must not panic.
        let accented = format!("é{}", &good[2..]);
        assert_eq!(accented.len(), TOKEN_LEN);
        assert!(Token::parse(&accented).is_err());
        let accented_at_dot = format!("{}é{}", &good[..ID_LEN - 1], &good[ID_LEN + 1..]);
        assert_eq!(accented_at_dot.len(), TOKEN_LEN);
        assert!(Token::parse(&accented_at_dot).is_err());
        for error in [
            TokenError::Empty,
            TokenError::Length(9),
            TokenError::Shape,
            TokenError::Charset,
            TokenError::Encoding,
        ] {
            assert!(!error.to_string().contains(&good));
        }
    }

    #[test]
    fn non_canonical_base64_is_refused() {
        // 16 bytes use 128 of the 132 bits of 22 characters: 'B' as the last one sets a stray bit.
        let id = format!("{}B", "A".repeat(ID_LEN - 1));
        assert_eq!(SessionId::parse(&id), Err(TokenError::Encoding));
        let id = format!("{}A", "A".repeat(ID_LEN - 1));
        assert!(SessionId::parse(&id).is_ok());
    }

    #[test]
    fn the_stored_hash_is_sha256_hex_and_compares_in_constant_time() {
        let t = token();
        let hex = t.secret_hash().to_hex();
        assert_eq!(hex.len(), 64);
        assert!(t.secret_hash().matches_hex(hex.as_bytes()));
        assert!(!t.secret_hash().matches_hex(&hex.as_bytes()[1..]));
        let mut other = hex.clone().into_bytes();
        other[63] = if other[63] == b'0' { b'1' } else { b'0' };
        assert!(!t.secret_hash().matches_hex(&other));
        // SHA-256 of 32 zero bytes, a published test vector.
        let zero = Token {
            id: SessionId("A".repeat(ID_LEN)),
            secret: [0; 32],
        };
        assert_eq!(
            zero.secret_hash().to_hex(),
            "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925"
        );
        assert!(
            !zero
                .secret_hash()
                .to_hex()
                .contains(&zero.expose()[ID_LEN + 1..])
        );
    }

    #[test]
    fn constant_time_eq_is_plain_equality() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
