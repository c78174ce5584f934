//! Listening on a unix socket beside TCP: the same API on both, a stale
//! socket file replaced at start, the file removed at shutdown.

mod support;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

use kong_looker_testsupport::socket::connect_at_first_sight;
use support::*;

fn get_unix(socket: &Path, path: &str) -> String {
    let mut s = UnixStream::connect(socket).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    reply
}

#[test]
fn serves_a_unix_socket_beside_tcp_and_removes_it_at_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("collector.sock");
    // What a SIGKILLed collector leaves behind.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let store = TestStore::sqlite();
    let listen = format!("unix:{}", socket.display());
    let mut c = Collector::start(&store.url(), &["--listen", &listen]);

    let reply = get_unix(&socket, "/healthz");
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.ends_with("ok\n"), "{reply}");
    let reply = get_unix(&socket, "/nowhere");
    assert!(reply.starts_with("HTTP/1.1 404"), "{reply}");
    assert_eq!(get(&c.url("/healthz")).0, 200);

    // A second collector on the same socket refuses to start.
    let err = serve_refused(&[
        "--store",
        &store.url(),
        "--allow-unauthenticated",
        "--listen",
        &listen,
    ]);
    assert!(err.contains("another process is listening"), "{err}");
    assert!(err.contains(&listen), "{err}");

    assert!(c.terminate().success());
    assert!(!socket.exists(), "the socket file outlived the collector");
}

#[test]
fn the_socket_accepts_as_soon_as_it_is_there() {
    // A client that waits for the path, then connects once, must not land
    // between bind() and listen(); this watches without pause to find out.
    let store = TestStore::sqlite();
    for _ in 0..300 {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("collector.sock");
        let mut serve = std::process::Command::new(env!("CARGO_BIN_EXE_kong-looker-collector"));
        serve
            .args(["serve", "--allow-unauthenticated", "--store", &store.url()])
            .arg("--listen")
            .arg(format!("unix:{}", socket.display()));
        if let Err(e) = connect_at_first_sight(&mut serve, &socket) {
            panic!("connect at first sight of the socket: {e}");
        }
    }
}

#[test]
fn bad_listen_values_are_named() {
    for (value, says) in [
        ("unix:relative.sock", "absolute path"),
        ("collector.internal:9400", "host names are not resolved"),
    ] {
        let err = serve_refused(&["--allow-unauthenticated", "--listen", value]);
        assert!(err.contains(value) && err.contains(says), "{value}: {err}");
    }
}
