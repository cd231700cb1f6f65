//! Walking the keyspace with `SCAN`, one page per round trip, through a `next().await` cursor (no stream
//! crate needed).

use std::collections::VecDeque;

use super::commands::{self, ScanOptions};
use super::{Client, Transport};
use crate::Result;

/// A cursor over every key matching the options; see [`Client::scan`].
///
/// Redis's `SCAN` guarantees that a key present for the whole walk is returned at least once (possibly
/// more than once); keys added or removed during the walk may or may not be.
#[derive(Debug)]
pub struct Scan<'c, T: Transport> {
    client: &'c Client<T>,
    options: ScanOptions,
    cursor: String,
    buffer: VecDeque<String>,
    done: bool,
}

impl<T: Transport> Client<T> {
    /// Starts walking the keys matching `options` (`MATCH`, `COUNT`, `TYPE`). Nothing is sent until
    /// [`Scan::next`] or [`Scan::next_page`].
    ///
    /// ```no_run
    /// # async fn demo(client: &redge::Client) -> redge::Result<()> {
    /// use redge::client::commands::ScanOptions;
    /// let mut keys = client.scan(ScanOptions { pattern: Some("session:*".into()), ..Default::default() });
    /// while let Some(key) = keys.next().await? {
    ///     let _: String = key;
    /// }
    /// # Ok(()) }
    /// ```
    pub fn scan(&self, options: ScanOptions) -> Scan<'_, T> {
        Scan {
            client: self,
            options,
            cursor: "0".into(),
            buffer: VecDeque::new(),
            done: false,
        }
    }
}

impl<T: Transport> Scan<'_, T> {
    /// The next key, or `None` when the walk is over.
    ///
    /// # Errors
    /// As [`Client::query`]; the walk can be resumed by calling again.
    #[allow(clippy::should_implement_trait)]
    pub async fn next(&mut self) -> Result<Option<String>> {
        loop {
            if let Some(key) = self.buffer.pop_front() {
                return Ok(Some(key));
            }
            match self.next_page().await? {
                Some(page) => self.buffer.extend(page),
                None => return Ok(None),
            }
        }
    }

    /// The next page of keys as Redis returned it (possibly empty), or `None` when the walk is over.
    ///
    /// # Errors
    /// As [`Client::query`]; the walk can be resumed by calling again.
    pub async fn next_page(&mut self) -> Result<Option<Vec<String>>> {
        if self.done {
            return Ok(None);
        }
        let (cursor, keys): (String, Vec<String>) = self
            .client
            .query(&commands::scan(&self.cursor, &self.options))
            .await?;
        self.done = cursor == "0";
        self.cursor = cursor;
        Ok(Some(keys))
    }
}
