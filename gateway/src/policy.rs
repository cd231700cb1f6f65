//! Which commands a request may run: the refused list (section 8 of the protocol) and read-only tokens.

use std::collections::{HashMap, HashSet};

use redge::client::read_only::is_read_only;

use crate::commands::{DEFAULT_REFUSED, DEFAULT_REFUSED_SUBCOMMANDS};
use crate::error::GatewayError;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Every command that is not refused.
    Full,
    /// Only the commands [`redge::client::read_only`] calls read-only: the ones the client retries.
    ReadOnly,
}

/// The refused commands and subcommands, fixed at start-up.
#[derive(Debug, Clone)]
pub struct Policy {
    refused: HashSet<String>,
    /// Command name to its refused subcommands (`FUNCTION` to `LOAD`, ...).
    refused_subcommands: HashMap<String, HashSet<String>>,
}

/// An entry of `--refuse` or `--allow`: `NAME` or `NAME SUBCOMMAND`, upper case, single spaces.
fn normalize(entry: &str) -> String {
    entry
        .split_ascii_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_ascii_uppercase()
}

impl Policy {
    /// The default list plus `refuse`, minus `allow`. Entries are a command name (`DEBUG`) or a
    /// command and a subcommand (`FUNCTION LOAD`), in any case. Allowing a command also allows its
    /// subcommands on the built-in list (`--allow FUNCTION`); allowing one subcommand allows only
    /// that one.
    pub fn new(refuse: &[String], allow: &[String]) -> Policy {
        let allow: HashSet<String> = allow.iter().map(|n| normalize(n)).collect();
        // A built-in subcommand entry goes with its command's `--allow`; one given to `--refuse`
        // stays unless allowed by its own name.
        let defaults = DEFAULT_REFUSED.iter().map(|n| (*n).to_owned()).chain(
            DEFAULT_REFUSED_SUBCOMMANDS
                .iter()
                .filter(|(name, _)| !allow.contains(*name))
                .map(|(name, sub)| format!("{name} {sub}")),
        );
        let mut refused = HashSet::new();
        let mut refused_subcommands: HashMap<String, HashSet<String>> = HashMap::new();
        for entry in defaults.chain(refuse.iter().map(|n| normalize(n))) {
            if entry.is_empty() || allow.contains(&entry) {
                continue;
            }
            match entry.split_once(' ') {
                Some((name, sub)) => {
                    refused_subcommands
                        .entry(name.to_owned())
                        .or_default()
                        .insert(sub.to_owned());
                }
                None => {
                    refused.insert(entry);
                }
            }
        }
        Policy {
            refused,
            refused_subcommands,
        }
    }

    /// Refuses a command by name or by subcommand, `XREAD`/`XREADGROUP` when they would block, and
    /// writes from read-only tokens. `name` is the upper-case command name, `args` the whole command.
    pub fn check(&self, name: &str, args: &[Vec<u8>], access: Access) -> Result<(), GatewayError> {
        if self.refused.contains(name) {
            return Err(GatewayError::Refused(name.to_owned()));
        }
        if let Some(subcommands) = self.refused_subcommands.get(name)
            && let Some(sub) = args.get(1)
        {
            let sub = String::from_utf8_lossy(sub).to_ascii_uppercase();
            if subcommands.contains(&sub) {
                return Err(GatewayError::Refused(format!("{name} {sub}")));
            }
        }
        if (name == "XREAD" || name == "XREADGROUP")
            && args[1..].iter().any(|a| a.eq_ignore_ascii_case(b"BLOCK"))
        {
            return Err(GatewayError::Refused(format!("{name} with BLOCK")));
        }
        if access == Access::ReadOnly && !is_read_only(args) {
            return Err(GatewayError::NoPerm(name.to_ascii_lowercase()));
        }
        Ok(())
    }
}

/// The upper-case command name of a parsed command (`args[0]`).
pub fn command_name(args: &[Vec<u8>]) -> String {
    String::from_utf8_lossy(&args[0]).to_ascii_uppercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(items: &[&str]) -> Vec<Vec<u8>> {
        items.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    fn check(policy: &Policy, items: &[&str], access: Access) -> Result<(), GatewayError> {
        let args = args(items);
        policy.check(&command_name(&args), &args, access)
    }

    #[test]
    fn refuses_blocking_and_stateful_commands() {
        let policy = Policy::new(&[], &[]);
        assert!(check(&policy, &["blpop", "q", "0"], Access::Full).is_err());
        assert!(
            check(
                &policy,
                &["XREAD", "BLOCK", "0", "STREAMS", "s", "$"],
                Access::Full
            )
            .is_err()
        );
        assert!(
            check(
                &policy,
                &["XREAD", "COUNT", "1", "STREAMS", "s", "0"],
                Access::Full
            )
            .is_ok()
        );
        assert!(check(&policy, &["GET", "k"], Access::Full).is_ok());
    }

    #[test]
    fn the_list_is_configurable() {
        let policy = Policy::new(&["flushall".into()], &["debug".into()]);
        assert!(check(&policy, &["FLUSHALL"], Access::Full).is_err());
        assert!(check(&policy, &["DEBUG", "SLEEP", "0"], Access::Full).is_ok());
        assert!(check(&policy, &["SHUTDOWN"], Access::Full).is_err());
    }

    #[test]
    fn subcommands_are_refused_alone_and_allowed_with_their_command() {
        let defaults = Policy::new(&[], &[]);
        let err = check(
            &defaults,
            &["function", "load", "#!lua name=x"],
            Access::Full,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "ERR FUNCTION LOAD is not supported over the HTTP protocol"
        );
        assert!(check(&defaults, &["FUNCTION", "flush"], Access::Full).is_err());
        assert!(check(&defaults, &["FUNCTION", "LIST"], Access::Full).is_ok());
        assert!(check(&defaults, &["FUNCTION"], Access::Full).is_ok());
        for name in ["MIGRATE", "RESTORE", "restore-asking", "SWAPDB", "MOVE"] {
            assert!(
                check(&defaults, &[name, "x"], Access::Full).is_err(),
                "{name}"
            );
        }

        let all = Policy::new(&[], &["function".into()]);
        assert!(check(&all, &["FUNCTION", "LOAD", "x"], Access::Full).is_ok());
        assert!(check(&all, &["FUNCTION", "RESTORE", "x"], Access::Full).is_ok());
        let one = Policy::new(&[], &[" function  load ".into()]);
        assert!(check(&one, &["FUNCTION", "LOAD", "x"], Access::Full).is_ok());
        assert!(check(&one, &["FUNCTION", "DELETE", "x"], Access::Full).is_err());
        let extra = Policy::new(&["config get".into()], &["CONFIG".into()]);
        assert!(check(&extra, &["CONFIG", "get", "x"], Access::Full).is_err());
        assert!(check(&extra, &["CONFIG", "RESETSTAT"], Access::Full).is_ok());
    }

    #[test]
    fn read_only_tokens_run_reads_only() {
        let policy = Policy::new(&[], &[]);
        assert!(check(&policy, &["get", "k"], Access::ReadOnly).is_ok());
        assert!(check(&policy, &["SCRIPT", "exists", "abc"], Access::ReadOnly).is_ok());
        for write in [
            &["SET", "k", "v"][..],
            &["EVAL", "return 1", "0"],
            &["SCRIPT", "FLUSH"],
            &["NEWCMD"],
        ] {
            let err = check(&policy, write, Access::ReadOnly).unwrap_err();
            assert!(err.to_string().starts_with("NOPERM "), "{err}");
        }
    }

    /// Read-only tokens here and the client's retry rule read one table: every command a read-only
    /// token may run is one the client retries after a lost response, and every command it refuses
    /// with NOPERM is one the client does not retry.
    #[test]
    fn read_only_tokens_and_the_clients_retries_agree() {
        use crate::commands::{READ_ONLY, WRITES};
        let policy = Policy::new(&[], &[]);
        let mut commands: Vec<Vec<&str>> = READ_ONLY
            .iter()
            .chain(WRITES)
            .map(|name| vec![*name, "k"])
            .collect();
        commands.extend([
            vec!["script", "exists", "abc"],
            vec!["SCRIPT", "LOAD", "return 1"],
            vec!["SCRIPT", "FLUSH"],
            vec!["SCRIPT"],
            vec!["get", "k"],
            vec!["NEWCMD", "k"],
        ]);
        let (mut reads, mut writes) = (0, 0);
        for command in &commands {
            let mut cmd = redge::client::cmd(command[0]);
            for arg in &command[1..] {
                cmd = cmd.arg(*arg);
            }
            let retried = cmd.is_read_only();
            match check(&policy, command, Access::ReadOnly) {
                Ok(()) => {
                    assert!(
                        retried,
                        "{command:?} runs on a read-only token but is not retried"
                    );
                    reads += 1;
                }
                Err(GatewayError::NoPerm(_)) => {
                    assert!(
                        !retried,
                        "{command:?} is retried but refused to read-only tokens"
                    );
                    writes += 1;
                }
                Err(other) => panic!("{command:?}: {other}"),
            }
        }
        assert_eq!(
            reads,
            READ_ONLY.len() + 2,
            "every read and SCRIPT EXISTS, get"
        );
        assert_eq!(writes, commands.len() - reads);
        // Commands refused to every token are never retried either.
        for name in DEFAULT_REFUSED {
            assert!(!redge::client::cmd(name).arg("k").is_read_only(), "{name}");
        }
    }
}
