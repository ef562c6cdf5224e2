//! Exports whose clients stop reading: the database's connections go back to the pool once
//! the rows are read, whatever the client's pace, and a caller has at most four exports
//! under way.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use awc::http::StatusCode;
use umkm_api::domain::role::Role;
use umkm_api::seed::{self, Options};
use umkm_api::spool::AT_ONCE_PER_EXPORTER;

use crate::helpers::{TestApp, spawn_app, test_keys};

/// Enough rows that an NDJSON export (about 1 KB a business) is several times what the
/// sockets' buffers and the export's queue hold between a stalled client and the server.
const BUSINESSES: usize = 20_000;

/// An export asked for over a socket of its own, of which only the status line and headers
/// have been read.
struct Stalled {
    socket: TcpStream,
    head: String,
    body_start: Vec<u8>,
}

impl Stalled {
    fn start(app: &TestApp, token: &str, path: &str) -> Stalled {
        let mut socket = TcpStream::connect(app.server.addr()).unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(
            socket,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\n\
             Accept: application/x-ndjson\r\n\r\n"
        )
        .unwrap();
        let mut read = Vec::new();
        let mut buffer = [0u8; 4096];
        let end = loop {
            let n = socket.read(&mut buffer).unwrap();
            assert!(n > 0, "the server closed the connection before its headers");
            read.extend_from_slice(&buffer[..n]);
            if let Some(end) = read.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
        };
        let head = String::from_utf8_lossy(&read[..end]).into_owned();
        Stalled { socket, head, body_start: read[end..].to_vec() }
    }

    fn status(&self) -> u16 {
        self.head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap()
    }

    /// Reads the rest of the chunked body and returns its decoded bytes.
    fn read_to_end(mut self) -> Vec<u8> {
        let mut raw = self.body_start;
        let mut buffer = vec![0u8; 256 * 1024];
        while !raw.ends_with(b"0\r\n\r\n") {
            let n = self.socket.read(&mut buffer).unwrap();
            assert!(n > 0, "the body ended before its last chunk");
            raw.extend_from_slice(&buffer[..n]);
        }
        let (mut body, mut at) = (Vec::new(), 0);
        loop {
            let line_end = at + raw[at..].windows(2).position(|w| w == b"\r\n").unwrap();
            let size =
                usize::from_str_radix(std::str::from_utf8(&raw[at..line_end]).unwrap().trim(), 16).unwrap();
            if size == 0 {
                return body;
            }
            body.extend_from_slice(&raw[line_end + 2..line_end + 2 + size]);
            at = line_end + 2 + size + 2;
        }
    }
}

/// Waits until every connection of the pool is back, or `within` has passed.
async fn pool_idle(app: &TestApp, within: Duration) -> bool {
    let started = Instant::now();
    while started.elapsed() < within {
        let state = app.pool.state();
        if state.connections == state.idle_connections {
            return true;
        }
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[actix_rt::test]
async fn stalled_exports_hold_no_connection_and_a_caller_has_four_at_most() {
    let app = spawn_app().await;
    app.db(|conn| {
        seed::generate(conn, &test_keys(), &Options { businesses: BUSINESSES, seed: 5, force: false }, |_| ())
    })
    .unwrap();
    let admin = app.token_for(Role::Admin).await;
    let path = "/api/v1/businesses?sort=id";

    // As many exports as a caller may have, whose clients read their headers and then nothing.
    let stalled: Vec<Stalled> =
        (0..AT_ONCE_PER_EXPORTER).map(|_| Stalled::start(&app, &admin, path)).collect();
    for export in &stalled {
        assert_eq!(export.status(), 200, "{}", export.head);
        assert!(export.head.to_ascii_lowercase().contains("content-type: application/x-ndjson"));
    }
    // Their rows are read all the same, and the connections go back to the pool.
    assert!(
        pool_idle(&app, Duration::from_secs(60)).await,
        "stalled exports still hold connections: {:?}",
        app.pool.state()
    );

    // One more export of the same caller is refused while those are under way, and
    // changes nothing; another caller's export and everyone's reads are served meanwhile.
    let more = app.get(path).token(&admin).header("accept", "application/x-ndjson").send().await;
    let problem = more.assert_problem(429);
    let detail =
        format!("{AT_ONCE_PER_EXPORTER} of your exports are under way; start another once one has ended");
    assert_eq!(problem["detail"], detail);
    assert_eq!(more.header("retry-after").as_deref(), Some("5"));
    let officer = app.token_for(Role::Officer).await;
    let other = app.get(path).token(&officer).header("accept", "application/x-ndjson").send().await;
    assert_eq!(other.status, StatusCode::OK);
    let lines = other.body.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count();
    assert_eq!(lines, BUSINESSES);
    assert!(
        other.body.len() > 12 << 20,
        "the export is only {} bytes: no test of stalling",
        other.body.len()
    );
    let viewer = app.token_for(Role::Viewer).await;
    let reads = (1..=16).map(|id| app.get(&format!("/api/v1/businesses/{id}")).token(&viewer).send());
    for read in futures_util::future::join_all(reads).await {
        assert_eq!(read.status, StatusCode::OK);
    }

    // A stalled client that reads again gets every row, in order, from where it stopped.
    let mut stalled = stalled.into_iter();
    let body = stalled.next().unwrap().read_to_end();
    let ids: Vec<i64> = body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice::<serde_json::Value>(l).unwrap()["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), BUSINESSES);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "the rows are out of order");

    // Once a client has its export or has gone, its caller may start another.
    drop(stalled);
    let started = Instant::now();
    loop {
        let again =
            app.get("/api/v1/businesses?limit=1").token(&admin).header("accept", "text/csv").send().await;
        if again.status == StatusCode::OK {
            break;
        }
        assert_eq!(again.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(started.elapsed() < Duration::from_secs(10), "the exports' places were not given back");
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
}
