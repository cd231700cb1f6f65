//! Upstash's `#!lua flags=allow-key-locking` on a real Redis.
//!
//! Upstash lets a script declare `allow-key-locking` in its shebang; redis-server rejects the unknown
//! flag. The gateway removes the flag before `EVAL` and `SCRIPT LOAD`, so the script Redis caches has a
//! different SHA1 than the text the client hashed. A map from the client's SHA1 to Redis's SHA1 lets
//! `EVALSHA` and `SCRIPT EXISTS` with the client's hash find the script, and `SCRIPT LOAD` answers with the
//! client's hash.
//!
//! The shebang line is replaced, not removed: when other flags remain it keeps them (`#!lua
//! flags=no-writes`), otherwise it becomes an empty line, so line numbers in Redis's error messages
//! still match the client's source.
//!
//! On a Redis Cluster each node has its own script cache, so a script loaded (or run with `EVAL`)
//! through one node is unknown to the others, and to a replica promoted after a failover. In cluster
//! mode the map also remembers the source of every script it sees (`EVAL` and `SCRIPT LOAD`, by
//! Redis's SHA1), so that an `EVALSHA` a node answers with `NOSCRIPT` can be run there again as `EVAL`
//! without the client's help ([`Scripts::source`]). Single-node mode does not hash every `EVAL` for
//! that: one Redis has one cache.

use std::collections::HashMap;
use std::sync::RwLock;

use redge::client::Reply;

const FLAG: &str = "allow-key-locking";

/// Aliases kept at most; past it the map starts over (a client then gets `NOSCRIPT` once and falls
/// back to `EVAL`, which records the alias again). Bounds memory against clients sending endless scripts.
const MAX_ALIASES: usize = 10_000;

/// Script sources remembered at most (cluster mode), and their bytes in all: past either, the memory
/// starts over, as the alias map does (an `EVALSHA` of a forgotten script then reaches the client as
/// `NOSCRIPT`, and its `EVAL` fallback records it again).
const MAX_SOURCES: usize = 1_000;
const MAX_SOURCE_BYTES: usize = 8 * 1024 * 1024;

/// The alias map and, in cluster mode, the remembered sources; shared by every request.
#[derive(Default)]
pub struct Scripts {
    aliases: RwLock<HashMap<String, String>>,
    sources: Option<RwLock<Sources>>,
}

/// Script sources by Redis's SHA1 (lower-case hex), with their total size.
#[derive(Default)]
struct Sources {
    by_sha: HashMap<String, Vec<u8>>,
    bytes: usize,
}

/// What to do with the reply after the command ran.
#[derive(Debug, PartialEq, Eq)]
pub enum Fixup {
    /// Nothing.
    None,
    /// `SCRIPT LOAD`: answer with the client's hash instead of Redis's.
    Sha(String),
}

impl Fixup {
    /// Applies the fix to the command's reply.
    pub fn apply(&self, reply: Reply) -> Reply {
        match (self, reply) {
            (Fixup::Sha(sha), Reply::Data(_)) => Reply::Data(sha.clone().into_bytes()),
            (_, reply) => reply,
        }
    }
}

impl Scripts {
    /// The map for a Redis Cluster: it also remembers script sources.
    pub fn remembering_sources() -> Scripts {
        Scripts {
            aliases: RwLock::default(),
            sources: Some(RwLock::default()),
        }
    }

    /// The source of the script Redis knows by `sha` (any case), if this map has seen it.
    pub fn source(&self, sha: &[u8]) -> Option<Vec<u8>> {
        let sources = self.sources.as_ref()?;
        let sha = std::str::from_utf8(sha).ok()?.to_ascii_lowercase();
        let sources = sources.read().unwrap_or_else(|e| e.into_inner());
        sources.by_sha.get(&sha).cloned()
    }

    /// Remembers a script as Redis will cache it (cluster mode only).
    fn remember(&self, script: &[u8]) {
        let Some(sources) = &self.sources else {
            return;
        };
        let sha = sha1_hex(script);
        if sources
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .by_sha
            .contains_key(&sha)
        {
            return;
        }
        let mut sources = sources.write().unwrap_or_else(|e| e.into_inner());
        if sources.by_sha.len() >= MAX_SOURCES || sources.bytes + script.len() > MAX_SOURCE_BYTES {
            sources.by_sha.clear();
            sources.bytes = 0;
        }
        if script.len() <= MAX_SOURCE_BYTES {
            sources.bytes += script.len();
            sources.by_sha.insert(sha, script.to_vec());
        }
    }

    /// Rewrites a command in place (`args[0]` upper-cased is `name`) and says how to fix its reply.
    pub fn rewrite(&self, name: &str, args: &mut [Vec<u8>]) -> Fixup {
        match name {
            "EVAL" | "EVAL_RO" if args.len() > 1 => {
                self.strip_and_record(&mut args[1]);
                self.remember(&args[1]);
                Fixup::None
            }
            "EVALSHA" | "EVALSHA_RO" if args.len() > 1 => {
                self.resolve(&mut args[1]);
                Fixup::None
            }
            "SCRIPT" if args.len() > 2 && args[1].eq_ignore_ascii_case(b"LOAD") => {
                let fixup = match self.strip_and_record(&mut args[2]) {
                    Some(original) => Fixup::Sha(original),
                    None => Fixup::None,
                };
                self.remember(&args[2]);
                fixup
            }
            "SCRIPT" if args.len() > 2 && args[1].eq_ignore_ascii_case(b"EXISTS") => {
                for sha in &mut args[2..] {
                    self.resolve(sha);
                }
                Fixup::None
            }
            _ => Fixup::None,
        }
    }

    /// Strips the flag from a script; returns the SHA1 of the original text when it did.
    fn strip_and_record(&self, script: &mut Vec<u8>) -> Option<String> {
        let stripped = strip_flag(script)?;
        let original = sha1_hex(script);
        let alias = sha1_hex(&stripped);
        *script = stripped;
        let mut aliases = self.aliases.write().unwrap_or_else(|e| e.into_inner());
        if aliases.len() >= MAX_ALIASES && !aliases.contains_key(&original) {
            aliases.clear();
        }
        aliases.insert(original.clone(), alias);
        Some(original)
    }

    fn resolve(&self, sha: &mut Vec<u8>) {
        let Ok(text) = std::str::from_utf8(sha) else {
            return;
        };
        let aliases = self.aliases.read().unwrap_or_else(|e| e.into_inner());
        if let Some(alias) = aliases.get(&text.to_ascii_lowercase()) {
            *sha = alias.clone().into_bytes();
        }
    }
}

/// The script without `allow-key-locking`, or `None` when its first line does not carry the flag.
pub fn strip_flag(script: &[u8]) -> Option<Vec<u8>> {
    let end = script
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(script.len());
    let line = std::str::from_utf8(&script[..end]).ok()?;
    let line = line.strip_suffix('\r').unwrap_or(line);
    let rest = line.strip_prefix("#!lua")?;
    let (before, flags) = rest.split_once("flags=")?;
    let flags: Vec<&str> = flags.split(',').map(str::trim).collect();
    if !flags.contains(&FLAG) {
        return None;
    }
    let kept: Vec<&str> = flags.into_iter().filter(|f| *f != FLAG).collect();
    let mut out = Vec::with_capacity(script.len());
    if !kept.is_empty() {
        out.extend_from_slice(format!("#!lua{before}flags={}", kept.join(",")).as_bytes());
    }
    out.extend_from_slice(&script[end..]);
    Some(out)
}

/// Lower-case hex SHA1, as Redis reports script hashes.
pub fn sha1_hex(bytes: &[u8]) -> String {
    sha1_smol::Sha1::from(bytes).digest().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_only_the_flag() {
        let strip = |s: &str| strip_flag(s.as_bytes()).map(|v| String::from_utf8(v).unwrap());
        assert_eq!(
            strip("#!lua flags=allow-key-locking\nreturn 1").as_deref(),
            Some("\nreturn 1")
        );
        assert_eq!(
            strip("#!lua flags=no-writes,allow-key-locking\nreturn 1").as_deref(),
            Some("#!lua flags=no-writes\nreturn 1")
        );
        assert_eq!(strip("#!lua flags=no-writes\nreturn 1"), None);
        assert_eq!(strip("return 1"), None);
        assert_eq!(strip("#!lua flags=allow-key-locking").as_deref(), Some(""));
    }

    #[test]
    fn hashes_like_redis() {
        // SHA1("return 1"), as SCRIPT LOAD reports it.
        assert_eq!(
            sha1_hex(b"return 1"),
            "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"
        );
    }

    #[test]
    fn aliases_follow_the_client_hash() {
        let scripts = Scripts::default();
        let source = b"#!lua flags=allow-key-locking\nreturn 1".to_vec();
        let original = sha1_hex(&source);
        let mut load = vec![b"SCRIPT".to_vec(), b"LOAD".to_vec(), source];
        assert_eq!(
            scripts.rewrite("SCRIPT", &mut load),
            Fixup::Sha(original.clone())
        );
        assert_eq!(load[2], b"\nreturn 1");
        let mut evalsha = vec![
            b"EVALSHA".to_vec(),
            original.to_uppercase().into_bytes(),
            b"0".to_vec(),
        ];
        scripts.rewrite("EVALSHA", &mut evalsha);
        assert_eq!(evalsha[1], sha1_hex(b"\nreturn 1").into_bytes());
        assert_eq!(
            scripts.source(&evalsha[1]),
            None,
            "single-node mode keeps no sources"
        );
    }

    #[test]
    fn cluster_mode_remembers_sources_by_redis_hash() {
        let scripts = Scripts::remembering_sources();
        let mut eval = vec![b"EVAL".to_vec(), b"return 2".to_vec(), b"0".to_vec()];
        scripts.rewrite("EVAL", &mut eval);
        let sha = sha1_hex(b"return 2");
        assert_eq!(
            scripts.source(sha.to_uppercase().as_bytes()).as_deref(),
            Some(&b"return 2"[..])
        );
        let source = b"#!lua flags=allow-key-locking\nreturn 3".to_vec();
        let mut load = vec![b"SCRIPT".to_vec(), b"LOAD".to_vec(), source];
        scripts.rewrite("SCRIPT", &mut load);
        let stripped = sha1_hex(b"\nreturn 3");
        assert_eq!(
            scripts.source(stripped.as_bytes()).as_deref(),
            Some(&b"\nreturn 3"[..])
        );
        assert_eq!(scripts.source(b"not-a-sha"), None);
        for i in 0..MAX_SOURCES + 1 {
            scripts.remember(format!("return {i}").as_bytes());
        }
        let sources = scripts.sources.as_ref().unwrap().read().unwrap();
        assert!(sources.by_sha.len() <= MAX_SOURCES, "bounded");
    }
}
