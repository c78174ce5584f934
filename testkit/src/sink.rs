//! A real HTTP/1.1 server on 127.0.0.1 that stands where the collector
//! will be: it records every request it gets and answers what the test
//! tells it to, so that tests can see the exact bytes the filter sends and
//! make delivery fail on purpose. One connection at a time, as the
//! filter's `Connection: close` calls arrive.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// One request the sink received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// Method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Headers, lowercase names.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
    /// The status the sink answered; 0 when it closed the connection
    /// instead (the request was read, the reply lost).
    pub answered: u16,
}

impl Received {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the sink answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// Status.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
    /// Real time to wait before answering.
    pub delay: Duration,
    /// Close the connection instead of answering (after the delay): the
    /// request was received, but its reply is lost.
    pub reset: bool,
}

impl Answer {
    /// A bare status.
    pub fn status(status: u16) -> Self {
        Answer {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            delay: Duration::ZERO,
            reset: false,
        }
    }

    /// No answer: the connection is closed once the request is read.
    pub fn reset() -> Self {
        Answer {
            reset: true,
            ..Answer::status(0)
        }
    }

    /// This answer, after `delay` of real time.
    pub fn after(self, delay: Duration) -> Self {
        Answer { delay, ..self }
    }
}

type Responder = Box<dyn FnMut(&Received) -> Answer + Send>;

struct State {
    received: Vec<Received>,
    responder: Responder,
}

/// Where a sink listens.
#[derive(Clone, Debug)]
enum Listen {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

/// The server. Stops when dropped.
pub struct Sink {
    listen: Listen,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// A connection the sink serves: TCP or a unix socket.
trait Conn: Read + Write + Sized {
    fn duplicate(&self) -> std::io::Result<Self>;
    fn close(&self);
    fn limit(&self, d: Duration) -> std::io::Result<()>;
}

// Both streams have the same calls under the same names.
macro_rules! conn {
    ($($stream:ty),*) => {$(
        impl Conn for $stream {
            fn duplicate(&self) -> std::io::Result<Self> {
                self.try_clone()
            }
            fn close(&self) {
                let _ = self.shutdown(std::net::Shutdown::Both);
            }
            fn limit(&self, d: Duration) -> std::io::Result<()> {
                self.set_read_timeout(Some(d))
            }
        }
    )*};
}
conn!(TcpStream, UnixStream);

impl Sink {
    /// Starts a sink on a free port that answers 204 to everything.
    pub fn start() -> std::io::Result<Sink> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        Ok(Sink::run(Listen::Tcp(addr), move |state, stop| {
            accept(listener.incoming(), state, stop)
        }))
    }

    /// Starts a sink on a unix socket at `path` (removed first if present).
    pub fn start_unix(path: impl Into<PathBuf>) -> std::io::Result<Sink> {
        let path = path.into();
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path)?;
        Ok(Sink::run(Listen::Unix(path), move |state, stop| {
            accept(listener.incoming(), state, stop)
        }))
    }

    fn run(
        listen: Listen,
        accept: impl FnOnce(&Mutex<State>, &AtomicBool) + Send + 'static,
    ) -> Sink {
        let state = Arc::new(Mutex::new(State {
            received: Vec::new(),
            responder: Box::new(|_| Answer::status(204)),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let state = state.clone();
            let stop = stop.clone();
            std::thread::spawn(move || accept(&state, &stop))
        };
        Sink {
            listen,
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// The address to give the filter: `127.0.0.1:<port>` or
    /// `unix:<path>`.
    pub fn address(&self) -> String {
        match &self.listen {
            Listen::Tcp(addr) => addr.to_string(),
            Listen::Unix(path) => format!("unix:{}", path.display()),
        }
    }

    /// From now on, answer with `f`.
    pub fn answer_with(&self, f: impl FnMut(&Received) -> Answer + Send + 'static) {
        if let Ok(mut s) = self.state.lock() {
            s.responder = Box::new(f);
        }
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.state
            .lock()
            .map(|s| s.received.clone())
            .unwrap_or_default()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        match &self.listen {
            Listen::Tcp(addr) => {
                let _ = TcpStream::connect_timeout(addr, Duration::from_secs(1));
            }
            Listen::Unix(path) => {
                let _ = UnixStream::connect(path);
            }
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Listen::Unix(path) = &self.listen {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Serves connections one at a time until the sink is dropped.
fn accept<C: Conn>(
    conns: impl Iterator<Item = std::io::Result<C>>,
    state: &Mutex<State>,
    stop: &AtomicBool,
) {
    for conn in conns {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        if let Ok(conn) = conn {
            let _ = serve(conn, state);
        }
    }
}

fn serve(conn: impl Conn, state: &Mutex<State>) -> std::io::Result<()> {
    conn.limit(Duration::from_secs(10))?;
    let mut reader = BufReader::new(conn.duplicate()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let path = parts.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((n, v)) = h.split_once(':') {
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let mut received = Received {
        method,
        path,
        headers,
        body,
        answered: 0,
    };
    let answer = match state.lock() {
        Ok(mut s) => {
            let a = (s.responder)(&received);
            received.answered = if a.reset { 0 } else { a.status };
            s.received.push(received);
            a
        }
        Err(_) => Answer::status(500),
    };
    if !answer.delay.is_zero() {
        std::thread::sleep(answer.delay);
    }
    if answer.reset {
        conn.close();
        return Ok(());
    }
    let mut out = conn;
    let mut head = format!(
        "HTTP/1.1 {} X\r\ncontent-length: {}\r\nconnection: close\r\n",
        answer.status,
        answer.body.len()
    );
    for (n, v) in &answer.headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    out.write_all(head.as_bytes())?;
    out.write_all(&answer.body)?;
    out.flush()
}
