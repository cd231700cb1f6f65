//! `Client` options.

use serde::Deserialize;

use redge::client::Options;

use super::MAX_TIMEOUT_MS;

/// `new Client({ url, token, timeoutMs, retries, retryWrites })`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientOptions {
    /// The service's base URL.
    pub url: String,
    /// Its bearer token.
    pub token: String,
    /// See [`ClientTuning::timeout_ms`].
    pub timeout_ms: Option<u32>,
    /// See [`ClientTuning::retries`].
    pub retries: Option<u8>,
    /// See [`ClientTuning::retry_writes`].
    pub retry_writes: Option<bool>,
}

impl ClientOptions {
    /// The options besides the URL and token.
    pub fn tuning(&self) -> ClientTuning {
        ClientTuning {
            timeout_ms: self.timeout_ms,
            retries: self.retries,
            retry_writes: self.retry_writes,
        }
    }
}

/// The options `Client.fromEnv(env, options)` takes besides the environment.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientTuning {
    /// Deadline of one call, retries included (default 1000).
    pub timeout_ms: Option<u32>,
    /// Retries of failed reads, 0 to 2 (default 2).
    pub retries: Option<u8>,
    /// Also retry writes whose response was lost (default false).
    pub retry_writes: Option<bool>,
}

impl ClientTuning {
    /// The client options.
    ///
    /// # Errors
    /// A message naming the out-of-range option.
    pub fn options(&self) -> Result<Options, String> {
        let mut options = Options::default();
        if let Some(ms) = self.timeout_ms {
            if ms == 0 || ms > MAX_TIMEOUT_MS {
                return Err(format!(
                    "timeoutMs must be 1 to {MAX_TIMEOUT_MS} (milliseconds), got {ms}"
                ));
            }
            options.timeout_ms = ms;
        }
        if let Some(retries) = self.retries {
            if retries > redge::client::MAX_RETRIES {
                return Err(format!(
                    "retries must be 0 to {}, got {retries}",
                    redge::client::MAX_RETRIES
                ));
            }
            options.retries = retries;
        }
        options.retry_writes = self.retry_writes.unwrap_or(false);
        Ok(options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn client_options_read_camel_case_and_refuse_typos() {
        let o: ClientOptions =
            parse(r#"{"url":"http://x","token":"t","timeoutMs":300,"retries":0}"#).unwrap();
        let options = o.tuning().options().unwrap();
        assert_eq!((options.timeout_ms, options.retries), (300, 0));
        assert!(
            parse::<ClientOptions>(r#"{"url":"http://x","token":"t","timeout":3}"#)
                .unwrap_err()
                .contains("timeout")
        );
        assert!(
            parse::<ClientOptions>(r#"{"token":"t"}"#)
                .unwrap_err()
                .contains("url")
        );
        let bad = ClientTuning {
            timeout_ms: Some(0),
            ..Default::default()
        };
        assert!(bad.options().unwrap_err().contains("timeoutMs"));
        let bad = ClientTuning {
            retries: Some(9),
            ..Default::default()
        };
        assert!(bad.options().unwrap_err().contains("retries"));
    }
}
