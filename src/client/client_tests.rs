//! The client's sending logic against a scripted transport: retries, deadlines, sync tokens, scans.

use pollster::block_on;

use super::commands::{self, ScanOptions};
use super::transport::{FakeTransport, fake_server, ok};
use super::*;

fn client(transport: FakeTransport) -> Client<FakeTransport> {
    Client::with_transport("http://redis.test", "t", transport).unwrap()
}

fn refused() -> Result<HttpResponse> {
    Err(Error::Transport("connection refused".into()))
}

fn status(code: u16) -> Result<HttpResponse> {
    Ok(HttpResponse {
        status: code,
        sync_token: None,
        body: br#"{"error":"unavailable"}"#.to_vec(),
    })
}

#[test]
fn reads_are_retried_with_capped_backoff() {
    let transport = FakeTransport::new(|_, n| {
        if n < 2 {
            refused()
        } else {
            ok(br#"{"result":"T0s="}"#.to_vec())
        }
    });
    let client = client(transport);
    let v: String = block_on(client.query(&commands::get("k"))).unwrap();
    assert_eq!(v, "OK");
    assert_eq!(*client.transport.sleeps.borrow(), [25, 50]);
    assert_eq!(
        client.stats(),
        Stats {
            round_trips: 3,
            commands: 3,
            retries: 2
        }
    );
    // Each attempt gets what is left of the one deadline.
    let budgets: Vec<u32> = client
        .transport
        .requests
        .borrow()
        .iter()
        .map(|r| r.timeout_ms)
        .collect();
    assert_eq!(budgets, [1000, 975, 925]);
}

#[test]
fn five_hundreds_are_retried_for_reads_only() {
    let transport = FakeTransport::new(|_, n| {
        if n == 0 {
            status(503)
        } else {
            ok(br#"{"result":1}"#.to_vec())
        }
    });
    let client = client(transport);
    assert_eq!(
        block_on(client.query::<i64>(&commands::exists(["k"]))),
        Ok(1)
    );
    assert_eq!(client.stats().retries, 1);

    let client = self::client(FakeTransport::new(|_, _| status(503)));
    let err = block_on(client.query::<i64>(&commands::incr("k"))).unwrap_err();
    assert!(matches!(err, Error::Http { status: 503, .. }));
    assert_eq!(client.stats().round_trips, 1);

    // A 400 is an answer, never retried.
    let client = self::client(FakeTransport::new(|_, _| status(400)));
    assert!(block_on(client.query::<i64>(&commands::get("k"))).is_err());
    assert_eq!(client.stats().round_trips, 1);
}

#[test]
fn writes_are_not_retried_unless_asked() {
    let client = client(FakeTransport::new(|_, _| refused()));
    let err = block_on(client.query::<i64>(&commands::incr("k"))).unwrap_err();
    assert!(matches!(err, Error::Transport(_)));
    assert_eq!(client.stats().round_trips, 1);

    let transport = FakeTransport::new(|_, n| {
        if n == 0 {
            refused()
        } else {
            ok(br#"{"result":1}"#.to_vec())
        }
    });
    let client = self::client(transport).retry_writes(true);
    assert_eq!(block_on(client.query::<i64>(&commands::incr("k"))), Ok(1));
    assert_eq!(client.stats().retries, 1);

    let client = self::client(FakeTransport::new(|_, _| refused())).options(Options {
        retries: 9,
        ..Options::default()
    });
    assert_eq!(client.current_options().retries, MAX_RETRIES);
    assert!(block_on(client.query::<String>(&commands::ping())).is_err());
    assert_eq!(client.stats().round_trips, 3, "at most two retries");
}

#[test]
fn retries_stay_inside_the_deadline() {
    let client = client(FakeTransport::new(|_, _| refused())).timeout_ms(60);
    assert!(block_on(client.query::<String>(&commands::get("k"))).is_err());
    // 60 ms: one retry after 25 ms; the next pause (50 ms) would pass the deadline.
    assert_eq!(*client.transport.sleeps.borrow(), [25]);
    assert_eq!(client.stats().round_trips, 2);

    let client =
        self::client(FakeTransport::new(|r, _| Err(Error::Timeout(r.timeout_ms)))).timeout_ms(300);
    let err = block_on(client.query::<String>(&commands::get("k"))).unwrap_err();
    assert_eq!(err, Error::Timeout(300));
    assert!(err.is_timeout());
    assert_eq!(client.stats().round_trips, 1);
}

#[test]
fn the_latest_sync_token_is_sent() {
    let client = client(fake_server(|args| match args[0].as_str() {
        "PING" => Ok(Reply::Status("PONG".into())),
        _ => Err("ERR nope".into()),
    }));
    client.set_sync_token(Some("from-cookie".into()));
    let _: String = block_on(client.query(&commands::ping())).unwrap();
    assert!(block_on(client.query::<String>(&cmd("NOPE"))).is_err());
    let _: String = block_on(client.query(&commands::ping())).unwrap();
    let sent: Vec<Option<String>> = client
        .transport
        .requests
        .borrow()
        .iter()
        .map(|r| {
            r.headers
                .iter()
                .find(|(n, _)| n == protocol::SYNC_TOKEN_HEADER)
                .map(|(_, v)| v.clone())
        })
        .collect();
    // The token of the error response is the one sent next.
    assert_eq!(
        sent,
        [
            Some("from-cookie".into()),
            Some("tok".into()),
            Some("tok-err".into())
        ]
    );
    client.set_sync_token(None);
    assert_eq!(client.sync_token(), None);
}

#[test]
fn scan_walks_every_page() {
    let client = client(fake_server(|args| {
        assert_eq!(args[2..], ["MATCH", "s:*"]);
        let page = |cursor: &str, keys: &[&str]| {
            Reply::Array(vec![
                Reply::Data(cursor.as_bytes().to_vec()),
                Reply::Array(
                    keys.iter()
                        .map(|k| Reply::Data(k.as_bytes().to_vec()))
                        .collect(),
                ),
            ])
        };
        Ok(match args[1].as_str() {
            "0" => page("7", &["s:1", "s:2"]),
            "7" => page("9", &[]),
            _ => page("0", &["s:3"]),
        })
    }));
    let mut scan = client.scan(ScanOptions {
        pattern: Some("s:*".into()),
        ..ScanOptions::default()
    });
    let mut keys = Vec::new();
    while let Some(key) = block_on(scan.next()).unwrap() {
        keys.push(key);
    }
    assert_eq!(keys, ["s:1", "s:2", "s:3"]);
    assert_eq!(block_on(scan.next()), Ok(None));
    assert_eq!(client.stats().round_trips, 3);
}

#[test]
fn from_vars_reads_the_sdk_variables_and_names_a_missing_one() {
    let vars = |url: Option<&str>, token: Option<&str>| {
        let (url, token) = (url.map(str::to_owned), token.map(str::to_owned));
        move |name: &str| match name {
            URL_VAR => url.clone(),
            TOKEN_VAR => token.clone(),
            _ => None,
        }
    };
    let ok = Client::from_vars(
        vars(Some(" https://eu1.example.io "), Some("tok")),
        FakeTransport::new(|_, _| refused()),
    )
    .unwrap();
    assert_eq!(ok.url(), "https://eu1.example.io");
    for (url, token, missing) in [
        (None, Some("tok"), URL_VAR),
        (Some("https://a.example"), None, TOKEN_VAR),
        (Some("https://a.example"), Some("  "), TOKEN_VAR),
    ] {
        match Client::from_vars(vars(url, token), FakeTransport::new(|_, _| refused())) {
            Err(Error::Config(why)) => assert!(why.contains(missing), "{why}"),
            Err(other) => panic!("expected a config error naming {missing}, got {other:?}"),
            Ok(_) => panic!("expected a config error naming {missing}"),
        }
    }
    assert!(matches!(
        Client::from_vars(
            vars(Some("ftp://x"), Some("tok")),
            FakeTransport::new(|_, _| refused())
        ),
        Err(Error::Config(_))
    ));
}
