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

    /// Appends every item of `args`, in order.
    pub fn args_from<A: ToArg>(mut self, args: impl IntoIterator<Item = A>) -> Self {
        for arg in args {
            arg.write_arg(&mut self.args);
        }
        self
    }

    /// Appends `arg` when `condition` holds (for flags such as `NX`).
    pub fn arg_if(self, condition: bool, arg: impl ToArg) -> Self {
        if condition { self.arg(arg) } else { self }
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

    /// Whether this command only reads, so sending it twice has the same effect as sending it once.
    ///
    /// Only such commands are retried after a lost response (see [`crate::client::Options::retry_writes`]).
    /// The table is [`super::read_only`], the one the gateway's read-only tokens use; an unknown command
    /// counts as a write.
    pub fn is_read_only(&self) -> bool {
        super::read_only::is_read_only(&self.args)
    }
}

/// A value that can be one (or, for slices, several) command arguments.
pub trait ToArg {
    /// Appends this value's argument(s).
    fn write_arg(&self, out: &mut Vec<Vec<u8>>);
}

impl<T: ToArg + ?Sized> ToArg for &T {
    fn write_arg(&self, out: &mut Vec<Vec<u8>>) {
        (**self).write_arg(out);
    }
}

impl ToArg for str {
    fn write_arg(&self, out: &mut Vec<Vec<u8>>) {
        out.push(self.as_bytes().to_vec());
    }
}

impl ToArg for String {
    fn write_arg(&self, out: &mut Vec<Vec<u8>>) {
        out.push(self.as_bytes().to_vec());
    }
}

impl ToArg for [u8] {
    fn write_arg(&self, out: &mut Vec<Vec<u8>>) {
        out.push(self.to_vec());
    }
}

impl ToArg for Vec<u8> {
    fn write_arg(&self, out: &mut Vec<Vec<u8>>) {
        out.push(self.clone());
    }
}

macro_rules! number_arg {
    ($($t:ty),*) => {$(
        impl ToArg for $t {
            fn write_arg(&self, out: &mut Vec<Vec<u8>>) {
                out.push(self.to_string().into_bytes());
            }
        }
    )*};
}
number_arg!(i8, i16, i32, i64, isize, u8, u16, u32, u64, usize, f32, f64);

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

    #[test]
    fn mixed_arguments_through_trait_objects() {
        let key = String::from("k");
        let mixed: [&dyn ToArg; 3] = [&key, &7u8, &"x"];
        let c = cmd("X")
            .args_from(mixed)
            .arg_if(false, "NX")
            .arg_if(true, "XX");
        assert_eq!(
            c.args()[1..],
            [b"k".to_vec(), b"7".to_vec(), b"x".to_vec(), b"XX".to_vec()]
        );
    }

    #[test]
    fn only_reads_are_classified_read_only() {
        for read in [
            "GET", "get", "MGET", "ZRANGE", "SCAN", "PING", "TTL", "XRANGE",
        ] {
            assert!(cmd(read).is_read_only(), "{read}");
        }
        for write in [
            "SET", "INCR", "DEL", "EVAL", "EVALSHA", "EXPIRE", "LPUSH", "XADD", "FOO",
        ] {
            assert!(!cmd(write).is_read_only(), "{write}");
        }
        assert!(!cmd("SCRIPT").arg("LOAD").arg("return 1").is_read_only());
        assert!(cmd("script").arg("exists").arg("abc").is_read_only());
        assert!(!cmd("SCRIPT").arg("FLUSH").is_read_only());
        assert!(!cmd("SCRIPT").is_read_only());
    }
}
