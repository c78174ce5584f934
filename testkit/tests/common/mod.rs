//! Helpers for the host's tests: the probe filter, built for wasm32-wasip1
//! once per test binary, and a small HTTP server on 127.0.0.1 that records
//! what it receives.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use kong_looker_testkit::{Filter, Kong, Profile, compile};

/// The probe filter, compiled.
pub fn probe() -> Filter {
    static PROBE: OnceLock<Filter> = OnceLock::new();
    PROBE
        .get_or_init(|| {
            let wasm = compile::wasip1_filter(&compile::own_filter("probe"))
                .expect("build the probe filter");
            Filter::load(wasm).expect("load probe.wasm")
        })
        .clone()
}

/// A node running the probe with one chain per config.
pub fn kong(profile: Profile, workers: usize, chains: &[&str]) -> Kong {
    let mut b = Kong::builder(&probe(), profile).workers(workers);
    for c in chains {
        b = b.chain(c);
    }
    b.build()
}

/// Log messages, in order.
pub fn messages(kong: &Kong) -> Vec<String> {
    kong.logs().into_iter().map(|l| l.message).collect()
}

/// A raw HTTP request the server received.
#[derive(Clone, Debug)]
pub struct Received {
    pub head: String,
    pub body: Vec<u8>,
}

/// An HTTP server on 127.0.0.1 that answers every request with `status`
/// and `body` after `delay`, and records the requests.
pub struct Server {
    pub addr: String,
    pub received: Arc<Mutex<Vec<Received>>>,
}

pub fn server(status: u16, body: &'static str, delay: Duration) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    let received = Arc::new(Mutex::new(Vec::new()));
    let log = received.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let log = log.clone();
            std::thread::spawn(move || {
                let request = read_request(&mut stream);
                log.lock().unwrap().push(request);
                std::thread::sleep(delay);
                let reply = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(reply.as_bytes());
            });
        }
    });
    Server { addr, received }
}

pub fn read_request(stream: &mut impl Read) -> Received {
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).unwrap_or(0);
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).into_owned();
            let len = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            while raw.len() < end + 4 + len {
                let n = stream.read(&mut buf).unwrap_or(0);
                if n == 0 {
                    break;
                }
                raw.extend_from_slice(&buf[..n]);
            }
            return Received {
                head,
                body: raw[end + 4..].to_vec(),
            };
        }
    }
    Received {
        head: String::from_utf8_lossy(&raw).into_owned(),
        body: Vec::new(),
    }
}
