//! Sockets on 127.0.0.1: free ports, the upstream, a proxy that slows the
//! collector down, and a small HTTP/1.1 keep-alive client.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The header that tells the upstream how to answer:
/// `<status> <body bytes> <delay ms>`.
pub const ANSWER: &str = "x-answer";

/// How the upstream answers one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Answer {
    /// Status.
    pub status: u16,
    /// Body bytes (none for 204).
    pub body: u32,
    /// Delay before answering.
    pub delay_ms: u32,
}

/// The upstream: answers each request as its `x-answer` header says, on
/// keep-alive connections, one thread per connection.
pub struct Upstream {
    /// Its port.
    pub port: u16,
    stop: Arc<AtomicBool>,
    /// Requests answered.
    pub served: Arc<AtomicU64>,
    /// Requests without a readable `x-answer` (answered 400).
    pub unreadable: Arc<AtomicU64>,
}

impl Upstream {
    /// Starts listening.
    pub fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicU64::new(0));
        let unreadable = Arc::new(AtomicU64::new(0));
        let (s, n, u) = (stop.clone(), served.clone(), unreadable.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (n, u) = (n.clone(), u.clone());
                std::thread::spawn(move || serve(conn, &n, &u));
            }
        });
        Upstream {
            port,
            stop,
            served,
            unreadable,
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

static BODY: [u8; 65536] = [b'x'; 65536];

fn serve(conn: TcpStream, served: &AtomicU64, unreadable: &AtomicU64) {
    let _ = conn.set_nodelay(true);
    let _ = conn.set_read_timeout(Some(Duration::from_secs(120)));
    let mut out = conn.try_clone().unwrap();
    let mut reader = BufReader::with_capacity(16384, conn);
    let mut line = String::new();
    let mut response = Vec::with_capacity(70_000);
    loop {
        // The request line, then headers.
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut length = 0usize;
        let mut answer = None;
        let Ok(Some((headers, _))) = header_block(&mut reader) else {
            return;
        };
        for (name, value) in &headers {
            let value = value.as_str();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse().unwrap_or(0);
            } else if name.eq_ignore_ascii_case(ANSWER) {
                let mut it = value.split(' ').map(|v| v.parse::<u32>().ok());
                if let (Some(Some(s)), Some(Some(b)), Some(Some(d))) =
                    (it.next(), it.next(), it.next())
                {
                    answer = Some(Answer {
                        status: u16::try_from(s).unwrap_or(500),
                        body: b,
                        delay_ms: d,
                    });
                }
            }
        }
        if length > 0
            && std::io::copy(&mut (&mut reader).take(length as u64), &mut std::io::sink())
                .unwrap_or(0)
                < length as u64
        {
            return;
        }
        let a = answer.unwrap_or_else(|| {
            unreadable.fetch_add(1, Ordering::Relaxed);
            Answer {
                status: 400,
                body: 0,
                delay_ms: 0,
            }
        });
        if a.delay_ms > 0 {
            std::thread::sleep(Duration::from_millis(u64::from(a.delay_ms)));
        }
        response.clear();
        if a.status == 204 {
            response.extend_from_slice(b"HTTP/1.1 204 No Content\r\n\r\n");
        } else {
            let n = (a.body as usize).min(BODY.len());
            write!(
                response,
                "HTTP/1.1 {} Answer\r\nContent-Type: text/plain\r\nContent-Length: {n}\r\n\r\n",
                a.status
            )
            .unwrap();
            response.extend_from_slice(&BODY[..n]);
        }
        if out.write_all(&response).is_err() {
            return;
        }
        served.fetch_add(1, Ordering::Relaxed);
    }
}

/// A TCP proxy in front of the collector that holds each answer back for
/// `delay_ms` (changeable while it runs): a collector slower than the
/// filter's timeout.
pub struct SlowProxy {
    /// Where the filter should send.
    pub addr: SocketAddr,
    /// The delay applied to what the collector sends back.
    pub delay_ms: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl SlowProxy {
    /// Proxies to `target`.
    pub fn start(target: SocketAddr, delay_ms: u64) -> SlowProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let delay = Arc::new(AtomicU64::new(delay_ms));
        let stop = Arc::new(AtomicBool::new(false));
        let (d, s) = (delay.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(client) = conn else { continue };
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                let d = d.clone();
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || pipe(client, server, None));
                std::thread::spawn(move || pipe(s2, c2, Some(d)));
            }
        });
        SlowProxy {
            addr,
            delay_ms: delay,
            stop,
        }
    }
}

impl Drop for SlowProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream, delay: Option<Arc<AtomicU64>>) {
    let _ = from.set_read_timeout(Some(Duration::from_secs(120)));
    let mut buf = vec![0u8; 65536];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(d) = &delay {
            let ms = d.load(Ordering::Relaxed);
            if ms > 0 {
                std::thread::sleep(Duration::from_millis(ms));
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}

/// One response as the client read it.
#[derive(Clone, Copy, Debug)]
pub struct Response {
    /// Status.
    pub status: u16,
    /// Body bytes.
    pub body: usize,
    /// Every byte of it on the wire: status line, headers, body.
    pub wire: usize,
    /// The server will close the connection after it.
    pub close: bool,
}

/// Why no response came.
#[derive(Debug)]
pub enum Failed {
    /// The connection closed (or reset) before any byte of the response:
    /// the server never took the request, and it may be sent again.
    Closed,
    /// Anything else: a broken response, a timeout.
    Broken(String),
}

/// A keep-alive connection to one port.
pub struct Conn {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Conn {
    /// Connects, with a read timeout.
    pub fn open(port: u16) -> std::io::Result<Conn> {
        let s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(60)))?;
        Ok(Conn {
            writer: s.try_clone()?,
            reader: BufReader::with_capacity(65536, s),
        })
    }

    /// Writes requests (already serialized).
    pub fn send(&mut self, bytes: &[u8]) -> Result<(), Failed> {
        self.writer.write_all(bytes).map_err(|_| Failed::Closed)
    }

    /// Reads one response.
    pub fn read(&mut self) -> Result<Response, Failed> {
        let mut line = String::new();
        let mut wire = 0;
        match self.reader.read_line(&mut line) {
            Ok(0) => return Err(Failed::Closed),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
                ) =>
            {
                return Err(Failed::Closed);
            }
            Err(e) => return Err(Failed::Broken(e.to_string())),
            Ok(n) => wire += n,
        }
        let broken = |what: &str| Failed::Broken(what.to_owned());
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| broken(&format!("status line {line:?}")))?;
        let mut length = None;
        let mut chunked = false;
        let mut close = false;
        let (headers, n) = header_block(&mut self.reader)
            .map_err(|e| broken(&e.to_string()))?
            .ok_or_else(|| broken("eof in headers"))?;
        wire += n;
        for (name, value) in &headers {
            let value = value.as_str();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse::<usize>().ok();
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            }
        }
        let body = if status == 204 || status == 304 || (100..200).contains(&status) {
            0
        } else if chunked {
            let mut total = 0;
            loop {
                line.clear();
                wire += self
                    .reader
                    .read_line(&mut line)
                    .map_err(|e| broken(&e.to_string()))?;
                let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                    .map_err(|_| broken(&format!("chunk size {line:?}")))?;
                let got = std::io::copy(
                    &mut (&mut self.reader).take(size as u64 + 2),
                    &mut std::io::sink(),
                )
                .map_err(|e| broken(&e.to_string()))?;
                if got != size as u64 + 2 {
                    return Err(broken("short chunk"));
                }
                wire += size + 2;
                if size == 0 {
                    break;
                }
                total += size;
            }
            total
        } else if let Some(n) = length {
            let got = std::io::copy(&mut (&mut self.reader).take(n as u64), &mut std::io::sink())
                .map_err(|e| broken(&e.to_string()))?;
            if got != n as u64 {
                return Err(broken("short body"));
            }
            n
        } else {
            // Body to the end of the connection.
            close = true;
            std::io::copy(&mut self.reader, &mut std::io::sink())
                .map_err(|e| broken(&e.to_string()))? as usize
        };
        if !chunked {
            wire += body;
        }
        Ok(Response {
            status,
            body,
            wire,
            close,
        })
    }
}

/// Header (name, trimmed value) pairs, in order.
type Headers = Vec<(String, String)>;

/// HTTP/1 header lines up to the blank one, and the bytes read; `None`
/// when the stream ends first.
fn header_block(reader: &mut impl BufRead) -> std::io::Result<Option<(Headers, usize)>> {
    let mut headers = Vec::new();
    let mut read = 0;
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line)?;
        if n == 0 {
            return Ok(None);
        }
        read += n;
        let l = line.trim_end();
        if l.is_empty() {
            return Ok(Some((headers, read)));
        }
        if let Some((name, value)) = l.split_once(':') {
            headers.push((name.to_owned(), value.trim().to_owned()));
        }
    }
}
