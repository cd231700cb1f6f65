//! Reading variables while recording every problem, so that [`super::Config::from_vars`] can report
//! them all in one error: a deploy with three mistakes should take one fix, not three.
//!
//! Each capability's settings read their variables through one [`Reader`]. A value that is missing,
//! blank or invalid yields the default (so reading goes on) and, when invalid, a problem naming the
//! variable.

use std::str::FromStr;

use redge::origin::Origin;

use super::ConfigError;

/// The variables and the problems found so far.
pub(super) struct Reader<'a> {
    get: &'a dyn Fn(&str) -> Option<String>,
    problems: Vec<(&'static str, String)>,
}

impl<'a> Reader<'a> {
    pub(super) fn new(get: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Reader {
            get,
            problems: Vec::new(),
        }
    }

    /// The value of `name`; a blank value counts as unset.
    pub(super) fn read(&self, name: &str) -> Option<String> {
        (self.get)(name).filter(|v| !v.trim().is_empty())
    }

    /// Records a problem with `name`.
    pub(super) fn problem(&mut self, name: &'static str, message: impl Into<String>) {
        self.problems.push((name, message.into()));
    }

    /// `parse` applied to the value of `name`, or `default` when it is unset or invalid (its message
    /// then joins the problems).
    pub(super) fn parsed<T>(
        &mut self,
        name: &'static str,
        default: impl FnOnce() -> T,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> T {
        let Some(text) = self.read(name) else {
            return default();
        };
        parse(&text).unwrap_or_else(|message| {
            self.problem(name, message);
            default()
        })
    }

    /// A number for which `valid` holds, or `default` when unset; a problem saying what was
    /// `expected` otherwise.
    pub(super) fn number<N: FromStr>(
        &mut self,
        name: &'static str,
        default: N,
        valid: impl Fn(&N) -> bool,
        expected: &str,
    ) -> N {
        let Some(text) = self.read(name) else {
            return default;
        };
        match text.trim().parse::<N>() {
            Ok(n) if valid(&n) => n,
            _ => {
                let message = format!("{name} must be {expected}, got {:?}", shorten(&text));
                self.problem(name, message);
                default
            }
        }
    }

    /// A switch: `true`, `1`, `yes` or `on`; `false`, `0`, `no` or `off`; false when unset.
    pub(super) fn boolean(&mut self, name: &'static str) -> bool {
        self.parsed(
            name,
            || false,
            |text| match text.trim() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => Err(format!(
                    "{name} must be true or false (or on or off), got {:?}",
                    shorten(text)
                )),
            },
        )
    }

    /// The comma-separated origins of `name` added to `into`, each once.
    pub(super) fn origins(&mut self, name: &'static str, into: &mut Vec<Origin>) {
        let Some(list) = self.read(name) else {
            return;
        };
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match Origin::parse(item) {
                Ok(origin) if !into.contains(&origin) => into.push(origin),
                Ok(_) => {}
                Err(why) => self.problem(name, format!("{name}: {why}")),
            }
        }
    }

    /// Every problem recorded, or none.
    pub(super) fn finish(self) -> Result<(), ConfigError> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError {
                problems: self.problems,
            })
        }
    }
}

/// At most 80 characters of a value, for a message.
pub(super) fn shorten(text: &str) -> String {
    text.chars().take(80).collect()
}
