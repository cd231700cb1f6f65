//! Building commands: `cmd("SET").arg("k").arg("v").arg("EX").arg(60)`.

/// One Redis command: its name and arguments, each kept as bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cmd {
    args: Vec<Vec<u8>>,
}

/// Starts a command with the given name.
pub fn cmd(name: &str) -> Cmd {
    Cmd {
        args: vec![name.as_bytes().to_vec()],
    }
}

impl Cmd {
    /// Appends one argument.
    pub fn arg(mut self, arg: impl ToArg) -> Self {
        arg.write_arg(&mut self.args);
        self
    }

    /// The command name as given.
    pub fn name(&self) -> &str {
        // The name was built from a &str, so it is always UTF-8.
        std::str::from_utf8(&self.args[0]).unwrap_or("?")
    }

    /// The name followed by every argument.
    pub fn args(&self) -> &[Vec<u8>] {
        &self.args
    }
}

/// A value that can be one (or, for slices, several) command arguments.
pub trait ToArg {
    /// Appends this value's argument(s).
    fn write_arg(&self, out: &mut Vec<Vec<u8>>);
}

impl ToArg for &str {
    fn write_arg(&self, out: &mut Vec<Vec<u8>>) {
        out.push(self.as_bytes().to_vec());
    }
}

impl ToArg for String {
    fn write_arg(&self, out: &mut Vec<Vec<u8>>) {
        out.push(self.as_bytes().to_vec());
    }
}

impl ToArg for &String {
    fn write_arg(&self, out: &mut Vec<Vec<u8>>) {
        out.push(self.as_bytes().to_vec());
    }
}

impl ToArg for &[u8] {
    fn write_arg(&self, out: &mut Vec<Vec<u8>>) {
        out.push(self.to_vec());
    }
}

impl ToArg for Vec<u8> {
    fn write_arg(&self, out: &mut Vec<Vec<u8>>) {
        out.push(self.clone());
    }
}

macro_rules! int_arg {
    ($($t:ty),*) => {$(
        impl ToArg for $t {
            fn write_arg(&self, out: &mut Vec<Vec<u8>>) {
                out.push(self.to_string().into_bytes());
            }
        }
    )*};
}
int_arg!(i32, i64, u32, u64, usize, f64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_arguments_in_order() {
        let c = cmd("SET")
            .arg("k")
            .arg(String::from("v"))
            .arg("EX")
            .arg(60u32);
        assert_eq!(c.name(), "SET");
        let args: Vec<&[u8]> = c.args().iter().map(|a| a.as_slice()).collect();
        assert_eq!(args, vec![&b"SET"[..], b"k", b"v", b"EX", b"60"]);
    }

    #[test]
    fn floats_use_their_shortest_text() {
        assert_eq!(cmd("X").arg(1.5f64).args()[1], b"1.5");
        assert_eq!(cmd("X").arg(-3i64).args()[1], b"-3");
    }
}
