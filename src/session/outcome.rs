//! Decoding the session scripts' replies into outcomes. Pure: tested natively.
//!
//! Every script answers `{status, ...}`. `ok` carries the result; `missing`, `invalid` and `expired`
//! all mean "no session" and are not told apart to the caller (an attacker learns nothing from which);
//! `version` means the record was written by other code and is refused as an error; `late` means a
//! write script ran after its caller's deadline and changed nothing (see [`is_late`]).

use super::record::{self, Session, SessionSummary};
use super::token::{SecretHash, SessionId, Token};
use crate::client::{FromReply, Pairs, Reply};
use crate::{Error, Result};

/// A session read back, and whether this read extended it (then the cookie should be sent again).
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The session.
    pub session: Session,
    /// Whether the idle expiry moved; when it did, send the cookie again with the new `Max-Age`.
    pub refreshed: bool,
}

/// A new session and the token that opens it.
#[derive(Debug, Clone, PartialEq)]
pub struct Issued {
    /// The token to put in the cookie (it carries the secret).
    pub token: Token,
    /// The session as stored.
    pub session: Session,
}

/// What a data update did.
#[derive(Debug, Clone, PartialEq)]
pub enum Update {
    /// Saved; the session carries the new version.
    Saved(Loaded),
    /// The version did not match; nothing was written. The session is the current one.
    Conflict(Session),
    /// No valid session for this token.
    Unauthenticated,
}

/// What a revocation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    /// This many sessions ended.
    Ended(u64),
    /// The target session does not exist or belongs to someone else.
    NotFound,
    /// No valid session for this token.
    Unauthenticated,
}

/// Whether a write script refused to run because Redis reached it after the caller's deadline
/// (`{'late', ''}`): nothing was written, and the caller has already reported a timeout.
pub(crate) fn is_late(reply: &Reply) -> bool {
    matches!(reply, Reply::Array(items) if matches!(items.first(), Some(Reply::Data(s)) if s == b"late"))
}

/// Splits `{status, rest...}`.
fn split(reply: Reply) -> Result<(String, Vec<Reply>)> {
    let mut items = match reply {
        Reply::Array(items) if !items.is_empty() => items,
        other => {
            return Err(Error::Protocol(format!(
                "session script answered {}",
                other.shape()
            )));
        }
    };
    let rest = items.split_off(1);
    let status = String::from_reply(items.remove(0))
        .map_err(|m| Error::Protocol(format!("session script status: {m}")))?;
    Ok((status, rest))
}

/// `None` for the statuses that mean "no session", an error for `version` and anything unknown.
fn refusal(status: &str, rest: Vec<Reply>) -> Result<()> {
    match status {
        "missing" | "invalid" | "expired" => Ok(()),
        "version" => {
            let found = rest
                .into_iter()
                .next()
                .and_then(|r| String::from_reply(r).ok())
                .and_then(|s| s.parse().ok())
                .unwrap_or(-1);
            record::check_version(found)
        }
        other => Err(Error::Protocol(format!(
            "session script answered an unknown status {:?}",
            other.chars().take(40).collect::<String>()
        ))),
    }
}

/// Decodes `HGETALL` fields and checks the stored hash in constant time.
fn session(id: &SessionId, hash: &SecretHash, fields: Reply) -> Result<Option<Session>> {
    let Pairs(pairs) = Pairs::<Vec<u8>, Vec<u8>>::from_reply(fields)
        .map_err(|m| Error::Protocol(format!("session record: {m}")))?;
    let decoded = record::decode(id, pairs)?;
    // The script compared too; this keeps the check in one audited place even if a script changes.
    Ok(hash.matches_hex(&decoded.hash).then_some(decoded.session))
}

fn int(reply: Option<Reply>, what: &str) -> Result<i64> {
    reply
        .and_then(|r| i64::from_reply(r).ok())
        .ok_or_else(|| Error::Protocol(format!("session script reply without {what}")))
}

fn pairs_reply(items: Vec<Reply>) -> Result<Reply> {
    items
        .into_iter()
        .nth(1)
        .ok_or_else(|| Error::Protocol("session script reply without fields".into()))
}

/// `load`: `{'ok', refreshed, fields}` or a refusal.
pub(crate) fn loaded(token: &Token, reply: Reply) -> Result<Option<Loaded>> {
    let (status, rest) = split(reply)?;
    if status != "ok" {
        return refusal(&status, rest).map(|()| None);
    }
    let refreshed = int(rest.first().cloned(), "the refresh flag")? == 1;
    let fields = pairs_reply(rest)?;
    Ok(session(token.id(), &token.secret_hash(), fields)?
        .map(|session| Loaded { session, refreshed }))
}

/// `update`: like `load`, plus `{'conflict', 0, fields}`.
pub(crate) fn updated(token: &Token, reply: Reply) -> Result<Update> {
    let (status, rest) = split(reply)?;
    if status == "conflict" {
        let fields = pairs_reply(rest)?;
        return Ok(match session(token.id(), &token.secret_hash(), fields)? {
            Some(current) => Update::Conflict(current),
            None => Update::Unauthenticated,
        });
    }
    let reply = Reply::Array(
        std::iter::once(Reply::Data(status.into_bytes()))
            .chain(rest)
            .collect(),
    );
    Ok(match loaded(token, reply)? {
        Some(l) => Update::Saved(l),
        None => Update::Unauthenticated,
    })
}

/// `issue`: `{'ok', candidate, fields}`, `{'collision'}` or a refusal (rotation of an invalid session).
pub(crate) fn issued(candidates: [Token; 2], reply: Reply) -> Result<Option<Issued>> {
    let (status, rest) = split(reply)?;
    match status.as_str() {
        "ok" => {}
        "collision" => {
            return Err(Error::Protocol(
                "both candidate session ids are taken; the random source is broken".into(),
            ));
        }
        _ => return refusal(&status, rest).map(|()| None),
    }
    let chosen = int(rest.first().cloned(), "the chosen candidate")?;
    let [first, second] = candidates;
    let token = if chosen == 2 { second } else { first };
    let fields = pairs_reply(rest)?;
    match session(token.id(), &token.secret_hash(), fields)? {
        Some(session) => Ok(Some(Issued { token, session })),
        None => Err(Error::Protocol(
            "a new session was stored with another hash".into(),
        )),
    }
}

/// `incr`: `{'ok', value}` or a refusal.
pub(crate) fn counted(reply: Reply) -> Result<Option<i64>> {
    let (status, rest) = split(reply)?;
    if status != "ok" {
        return refusal(&status, rest).map(|()| None);
    }
    int(rest.into_iter().next(), "the counter").map(Some)
}

/// `list`: `{'ok', {id, created, last seen, expires}...}` or a refusal.
pub(crate) fn listed(current: &SessionId, reply: Reply) -> Result<Option<Vec<SessionSummary>>> {
    let (status, rest) = split(reply)?;
    if status != "ok" {
        return refusal(&status, rest).map(|()| None);
    }
    let mut out = Vec::with_capacity(rest.len());
    for entry in rest {
        let (id, created, last_seen, expires_at) =
            <(String, String, String, String)>::from_reply(entry)
                .map_err(|m| Error::Protocol(format!("session list entry: {m}")))?;
        let id = SessionId::parse(&id)
            .map_err(|e| Error::Protocol(format!("session list entry id: {e}")))?;
        let number = |s: &str| {
            s.parse::<u64>()
                .map_err(|_| Error::Protocol("session list entry time is not a number".into()))
        };
        out.push(SessionSummary {
            current: id == *current,
            id,
            created: number(&created)?,
            last_seen: number(&last_seen)?,
            expires_at: number(&expires_at)?,
        });
    }
    out.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
    Ok(Some(out))
}

/// `revoke`: `{'ok', n}`, `{'not_found'}` or a refusal.
pub(crate) fn revoked(reply: Reply) -> Result<Revoked> {
    let (status, rest) = split(reply)?;
    match status.as_str() {
        "ok" => {
            let n = int(rest.into_iter().next(), "the count")?;
            Ok(Revoked::Ended(u64::try_from(n).unwrap_or(0)))
        }
        "not_found" => Ok(Revoked::NotFound),
        _ => refusal(&status, rest).map(|()| Revoked::Unauthenticated),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::token::Counter;

    fn token(seed: u8) -> Token {
        Token::generate(&Counter::new(seed)).unwrap()
    }

    fn data(s: &str) -> Reply {
        Reply::Data(s.as_bytes().to_vec())
    }

    #[test]
    fn late_is_told_apart_from_every_other_status() {
        assert!(is_late(&Reply::Array(vec![data("late"), data("")])));
        for other in [
            Reply::Array(vec![data("ok"), Reply::Int(0)]),
            Reply::Array(vec![data("lateness"), data("")]),
            Reply::Array(vec![]),
            Reply::Status("late".into()),
            data("late"),
        ] {
            assert!(!is_late(&other), "{other:?}");
        }
    }

    fn fields(hash: &str, version: &str) -> Reply {
        let pairs = [
            ("v", version),
            ("h", hash),
            ("u", "alice"),
            ("c", "1"),
            ("s", "2"),
            ("e", "3"),
            ("a", "4"),
            ("n", "0"),
            ("d", "{}"),
        ];
        Reply::Array(pairs.iter().flat_map(|(k, v)| [data(k), data(v)]).collect())
    }

    fn ok(t: &Token, refreshed: i64) -> Reply {
        Reply::Array(vec![
            data("ok"),
            Reply::Int(refreshed),
            fields(&t.secret_hash().to_hex(), "1"),
        ])
    }

    #[test]
    fn load_replies() {
        let t = token(1);
        let l = loaded(&t, ok(&t, 1)).unwrap().unwrap();
        assert!(l.refreshed);
        assert_eq!(l.session.id, *t.id());
        for why in ["missing", "invalid", "expired"] {
            let r = Reply::Array(vec![data(why), data("")]);
            assert_eq!(loaded(&t, r).unwrap(), None);
        }
        let v = Reply::Array(vec![data("version"), data("9")]);
        assert!(loaded(&t, v).unwrap_err().to_string().contains("version 9"));
        assert!(loaded(&t, Reply::Nil).is_err());
        assert!(loaded(&t, Reply::Array(vec![data("what")])).is_err());
        // A record whose hash is not this token's is no session, even if a script let it through.
        let other = token(2);
        assert_eq!(loaded(&other, ok(&t, 0)).unwrap(), None);
    }

    #[test]
    fn update_replies() {
        let t = token(1);
        assert!(matches!(updated(&t, ok(&t, 0)).unwrap(), Update::Saved(_)));
        let conflict = Reply::Array(vec![
            data("conflict"),
            Reply::Int(0),
            fields(&t.secret_hash().to_hex(), "1"),
        ]);
        assert!(matches!(
            updated(&t, conflict).unwrap(),
            Update::Conflict(_)
        ));
        let gone = Reply::Array(vec![data("missing"), data("")]);
        assert_eq!(updated(&t, gone).unwrap(), Update::Unauthenticated);
    }

    #[test]
    fn issue_picks_the_candidate_the_script_used() {
        let (a, b) = (token(1), token(60));
        let reply = Reply::Array(vec![
            data("ok"),
            Reply::Int(2),
            fields(&b.secret_hash().to_hex(), "1"),
        ]);
        let issued = issued([a.clone(), b.clone()], reply).unwrap().unwrap();
        assert_eq!(issued.token, b);
        let collision = Reply::Array(vec![data("collision"), data("")]);
        assert!(issued_err([a, b], collision));
    }

    fn issued_err(candidates: [Token; 2], reply: Reply) -> bool {
        issued(candidates, reply).is_err()
    }

    #[test]
    fn list_and_revoke_replies() {
        let t = token(1);
        let other = token(9);
        let entry = |id: &SessionId, created: &str| {
            Reply::Array(vec![data(id.as_str()), data(created), data("5"), data("6")])
        };
        let reply = Reply::Array(vec![
            data("ok"),
            entry(other.id(), "20"),
            entry(t.id(), "10"),
        ]);
        let list = listed(t.id(), reply).unwrap().unwrap();
        assert_eq!(list.len(), 2);
        assert!(list[0].current && !list[1].current);
        assert_eq!(list[0].created, 10);
        let bad = Reply::Array(vec![
            data("ok"),
            Reply::Array(vec![data("x"), data("1"), data("2"), data("3")]),
        ]);
        assert!(listed(t.id(), bad).is_err());

        assert_eq!(
            revoked(Reply::Array(vec![data("ok"), Reply::Int(50)])).unwrap(),
            Revoked::Ended(50)
        );
        assert_eq!(
            revoked(Reply::Array(vec![data("not_found"), data("")])).unwrap(),
            Revoked::NotFound
        );
        assert_eq!(
            revoked(Reply::Array(vec![data("expired"), data("")])).unwrap(),
            Revoked::Unauthenticated
        );
        assert_eq!(
            counted(Reply::Array(vec![data("ok"), Reply::Int(3)])).unwrap(),
            Some(3)
        );
    }
}
