//! Real HTTP for `dispatch_http_call`: each call is an HTTP/1.1 request
//! with `Connection: close`, as ngx_wasm_module sends it, made on its own
//! thread to `ip:port`, `host:port`, `[v6]:port` or `unix:/path`, within the
//! call's timeout. Responses wait until the test turns the clock, then the
//! worker delivers them in token order, so tests stay deterministic.
//!
//! As in ngx_wasm_module (`ngx_http_proxy_wasm_dispatch.c`, 9136e463):
//! tokens count from 0 in each worker process (a static `callout_ids`, so
//! they go on across instances and start again only in a new process), and
//! `:dispatch_status` is one of `ngx_wasm_socket_tcp.c`'s statuses: `ok`,
//! `timeout`, `broken connection`, `resolver failure`, `reader failure`
//! (a response it cannot parse), ...

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One call the filter made, as the test sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DispatchRecord {
    /// The worker that made it.
    pub worker: usize,
    /// Its token.
    pub token: u32,
    /// The upstream argument.
    pub upstream: String,
    /// `:method`.
    pub method: String,
    /// `:path`.
    pub path: String,
    /// Headers, pseudo-headers included, as the filter gave them.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
    /// Timeout argument, ms.
    pub timeout_ms: u32,
    /// The test clock when it was made, Unix ms.
    pub at_ms: u64,
}

/// How a call ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallResult {
    /// The upstream answered.
    Response {
        /// HTTP status.
        status: u16,
        /// Response headers, lowercase names.
        headers: Vec<(String, String)>,
        /// Body.
        body: Vec<u8>,
    },
    /// No answer: the value ngx_wasm_module puts in `:dispatch_status`
    /// (`timeout`, `broken connection`, `resolver failure` or `reader
    /// failure`), and the reason it logs.
    Failed(&'static str),
}

pub(crate) struct Pending {
    pub token: u32,
    pub context_id: u32,
    pub root_id: u32,
    handle: JoinHandle<CallResult>,
}

impl Pending {
    pub fn wait(self) -> (u32, u32, u32, CallResult) {
        let result = self
            .handle
            .join()
            .unwrap_or(CallResult::Failed("broken connection"));
        (self.token, self.context_id, self.root_id, result)
    }
}

/// A worker's calls in flight and the record of every call made.
#[derive(Clone)]
pub(crate) struct Dispatcher {
    pub next_token: Arc<Mutex<u32>>,
    pub pending: Arc<Mutex<Vec<Pending>>>,
    pub records: Arc<Mutex<Vec<DispatchRecord>>>,
}

impl Dispatcher {
    /// `next_token` is the worker process's counter, which outlives an
    /// instance (it starts at 0 in a new process).
    pub fn new(records: Arc<Mutex<Vec<DispatchRecord>>>, next_token: Arc<Mutex<u32>>) -> Self {
        Dispatcher {
            next_token,
            pending: Arc::new(Mutex::new(Vec::new())),
            records,
        }
    }

    /// Starts a call and returns its token.
    pub fn start(&self, record: DispatchRecord, context_id: u32, root_id: u32) -> u32 {
        let token = record.token;
        if let Ok(mut records) = self.records.lock() {
            records.push(record.clone());
        }
        let handle = std::thread::spawn(move || perform(&record));
        if let Ok(mut pending) = self.pending.lock() {
            pending.push(Pending {
                token,
                context_id,
                root_id,
                handle,
            });
        }
        token
    }

    /// Whether a call that root context `root_id` made itself (from a
    /// tick) is still in flight.
    pub fn root_call_pending(&self, root_id: u32) -> bool {
        self.pending
            .lock()
            .map(|p| {
                p.iter()
                    .any(|c| c.root_id == root_id && c.context_id == root_id)
            })
            .unwrap_or(false)
    }

    pub fn token(&self) -> u32 {
        let mut next = self.next_token.lock().unwrap_or_else(|e| e.into_inner());
        let token = *next;
        // A uint32_t in the engine: 0 is a token like any other.
        *next = next.wrapping_add(1);
        token
    }

    /// Waits for every call in flight and returns them in token order.
    pub fn finish_all(&self) -> Vec<(u32, u32, u32, CallResult)> {
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        let mut done: Vec<_> = pending.into_iter().map(Pending::wait).collect();
        done.sort_by_key(|(token, ..)| *token);
        done
    }
}

trait Stream: Read + Write {
    fn set_timeouts(&self, d: Duration) -> std::io::Result<()>;
}

impl Stream for TcpStream {
    fn set_timeouts(&self, d: Duration) -> std::io::Result<()> {
        self.set_read_timeout(Some(d))?;
        self.set_write_timeout(Some(d))
    }
}

impl Stream for UnixStream {
    fn set_timeouts(&self, d: Duration) -> std::io::Result<()> {
        self.set_read_timeout(Some(d))?;
        self.set_write_timeout(Some(d))
    }
}

fn connect(upstream: &str, timeout: Duration) -> Result<Box<dyn Stream>, &'static str> {
    if let Some(path) = upstream.strip_prefix("unix:") {
        return UnixStream::connect(path)
            .map(|s| Box::new(s) as Box<dyn Stream>)
            .map_err(|_| "broken connection");
    }
    let with_port = if upstream.rsplit_once(':').is_some_and(|(h, p)| {
        !h.ends_with(':') && p.parse::<u16>().is_ok() && (!h.contains(':') || h.ends_with(']'))
    }) {
        upstream.to_owned()
    } else {
        format!("{upstream}:80")
    };
    let addr = with_port
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or("resolver failure")?;
    TcpStream::connect_timeout(&addr, timeout)
        .map(|s| Box::new(s) as Box<dyn Stream>)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::TimedOut {
                "timeout"
            } else {
                "broken connection"
            }
        })
}

fn perform(call: &DispatchRecord) -> CallResult {
    let timeout = Duration::from_millis(u64::from(call.timeout_ms.max(1)));
    let deadline = Instant::now() + timeout;
    let mut stream = match connect(&call.upstream, timeout) {
        Ok(s) => s,
        Err(status) => return CallResult::Failed(status),
    };
    let authority = call
        .headers
        .iter()
        .find(|(k, _)| k == ":authority")
        .map_or(call.upstream.as_str(), |(_, v)| v.as_str());
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {authority}\r\n",
        call.method, call.path
    );
    for (k, v) in &call.headers {
        if !k.starts_with(':')
            && !k.eq_ignore_ascii_case("host")
            && !k.eq_ignore_ascii_case("content-length")
        {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    head.push_str(&format!(
        "Connection: close\r\nContent-Length: {}\r\n\r\n",
        call.body.len()
    ));
    let mut raw = Vec::new();
    let io = (|| -> std::io::Result<()> {
        stream.set_timeouts(timeout)?;
        let mut request = head.into_bytes();
        request.extend_from_slice(&call.body);
        stream.write_all(&request)?;
        let mut buf = [0u8; 16 * 1024];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(std::io::ErrorKind::TimedOut.into());
            }
            stream.set_timeouts(left)?;
            match stream.read(&mut buf)? {
                0 => return Ok(()),
                n => raw.extend_from_slice(&buf[..n]),
            }
        }
    })();
    match io {
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            ) =>
        {
            return CallResult::Failed("timeout");
        }
        Err(_) if raw.is_empty() => return CallResult::Failed("broken connection"),
        _ => {}
    }
    // The engine's HTTP reader fails on what it cannot parse, including a
    // connection closed before a whole response.
    parse_response(&raw).unwrap_or(CallResult::Failed("reader failure"))
}

fn parse_response(raw: &[u8]) -> Option<CallResult> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(len) = response.parse(raw).ok()? else {
        return None;
    };
    let status = response.code?;
    let headers: Vec<(String, String)> = response
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_ascii_lowercase(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let mut body = raw.get(len..)?.to_vec();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        body = dechunk(&body)?;
    } else if let Some(n) = header("content-length").and_then(|v| v.trim().parse::<usize>().ok()) {
        body.truncate(n);
    }
    Some(CallResult::Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(body.get(..line_end)?).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        body = body.get(line_end + 2..)?;
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(body.get(..size)?);
        body = body.get(size + 2..)?;
    }
}
