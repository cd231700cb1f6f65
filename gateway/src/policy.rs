//! Which commands a request may run: the refused list (section 8 of the protocol) and read-only tokens.

use std::collections::HashSet;

use crate::commands::{DEFAULT_REFUSED, is_read_only};
use crate::error::GatewayError;

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Every command that is not refused.
    Full,
    /// Only the commands of [`crate::commands::READ_ONLY`] (and `SCRIPT EXISTS`).
    ReadOnly,
}

/// The refused commands, fixed at start-up.
#[derive(Debug, Clone)]
pub struct Policy {
    refused: HashSet<String>,
}

impl Policy {
    /// The default list plus `refuse`, minus `allow` (names in any case).
    pub fn new(refuse: &[String], allow: &[String]) -> Policy {
        let allow: HashSet<String> = allow
            .iter()
            .map(|n| n.trim().to_ascii_uppercase())
            .collect();
        let refused = DEFAULT_REFUSED
            .iter()
            .map(|n| (*n).to_owned())
            .chain(refuse.iter().map(|n| n.trim().to_ascii_uppercase()))
            .filter(|n| !n.is_empty() && !allow.contains(n))
            .collect();
        Policy { refused }
    }

    /// Refuses a command by name, `XREAD`/`XREADGROUP` when they would block, and writes from read-only
    /// tokens. `name` is the upper-case command name, `args` the whole command.
    pub fn check(&self, name: &str, args: &[Vec<u8>], access: Access) -> Result<(), GatewayError> {
        if self.refused.contains(name) {
            return Err(GatewayError::Refused(name.to_owned()));
        }
        if (name == "XREAD" || name == "XREADGROUP")
            && args[1..].iter().any(|a| a.eq_ignore_ascii_case(b"BLOCK"))
        {
            return Err(GatewayError::Refused(format!("{name} with BLOCK")));
        }
        if access == Access::ReadOnly && !is_read_only(name) && !is_script_exists(name, args) {
            return Err(GatewayError::NoPerm(name.to_ascii_lowercase()));
        }
        Ok(())
    }
}

fn is_script_exists(name: &str, args: &[Vec<u8>]) -> bool {
    name == "SCRIPT"
        && args
            .get(1)
            .is_some_and(|a| a.eq_ignore_ascii_case(b"EXISTS"))
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
}
