//! The read of an entry and its tags' generation counters: one `MGET` per Redis Cluster slot, all in
//! one batch (one round trip), put back in the order asked.
//!
//! An entry and the counters of its tags live in different slots (see [`keys`](super::keys)), and a
//! cluster refuses a command whose keys span slots. On a single Redis the commands are as many, in the
//! same round trip.

use std::collections::HashMap;

use crate::client::{Batch, Handle, Transport, cmd};
use crate::slot::slot;
use crate::{Error, Result};

/// Values as `MGET` returns them: `None` for a missing key.
pub(super) type Values = Vec<Option<Vec<u8>>>;

/// A read added to a batch; [`Gather::take`] after it was sent.
pub(super) struct Gather {
    parts: Vec<(Vec<usize>, Handle<Values>)>,
    len: usize,
}

impl std::fmt::Debug for Gather {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gather")
            .field("commands", &self.parts.len())
            .field("keys", &self.len)
            .finish()
    }
}

impl Gather {
    /// Adds the read of `keys` to `batch`: one `MGET` per slot, in the order their slots first appear.
    pub(super) fn add<T: Transport>(batch: &Batch<'_, T>, keys: &[String]) -> Self {
        let mut slots: HashMap<u16, usize> = HashMap::new();
        let mut groups: Vec<Vec<usize>> = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let at = *slots.entry(slot(key.as_bytes())).or_insert_with(|| {
                groups.push(Vec::new());
                groups.len() - 1
            });
            groups[at].push(i);
        }
        let parts = groups
            .into_iter()
            .map(|members| {
                let read = cmd("MGET").args_from(members.iter().map(|i| &keys[*i]));
                (members, batch.add::<Values>(read))
            })
            .collect();
        Gather {
            parts,
            len: keys.len(),
        }
    }

    /// The values, in the order of the keys; the first error of any command otherwise.
    pub(super) fn take(self) -> Result<Values> {
        let mut out: Values = vec![None; self.len];
        for (members, handle) in self.parts {
            let values = handle.take()?;
            if values.len() != members.len() {
                return Err(Error::Protocol(format!(
                    "MGET of {} keys answered {} values",
                    members.len(),
                    values.len()
                )));
            }
            for (i, value) in members.into_iter().zip(values) {
                out[i] = value;
            }
        }
        Ok(out)
    }
}
