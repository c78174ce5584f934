//! The reference mix over real HTTP/1.1: each mix request becomes the
//! request a client would send to Kong (the headers of
//! tests/support/traffic.rs: consumer headers, API keys, bearer tokens,
//! Basic, SigV4, User-Agent), an answer for the upstream, and the row the
//! filter must write in the bare engine.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kong_looker_proto::mix::{Mix, MixParams};
use kong_looker_testkit::Profile;

use super::net::{ANSWER, Answer, Conn, Failed, Response};
use kong_looker_testsupport::traffic::kong_request;

/// How the mix's answers are scaled for a test: real delays and sizes
/// would make a run last minutes.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// The upstream waits the mix's latency divided by this.
    pub delay_divisor: u64,
    /// At most this long.
    pub max_delay_ms: u32,
    /// Response bodies at most this large.
    pub max_response: u32,
    /// Request bodies (POST and PUT) at most this large.
    pub max_request: u32,
}

impl Shape {
    /// The mix runs: a twentieth of the mix's latency, up to 20 ms;
    /// bodies up to 32 and 8 KiB.
    pub const MIX: Shape = Shape {
        delay_divisor: 20,
        max_delay_ms: 20,
        max_response: 32 * 1024,
        max_request: 8 * 1024,
    };
    /// Load: no delay, bodies up to 1 KiB.
    pub const LOAD: Shape = Shape {
        delay_divisor: 1,
        max_delay_ms: 0,
        max_response: 1024,
        max_request: 1024,
    };
}

/// Where the sizes are in `super::COLUMNS`.
const REQUEST_BYTES: usize = 11;
const RESPONSE_BYTES: usize = 12;

/// One request of the plan.
#[derive(Clone, Debug)]
pub struct Planned {
    /// The chain (server) it goes to.
    pub chain: usize,
    /// Request line and headers, without the request id and the blank line.
    pub head: String,
    /// Request body bytes.
    pub body: usize,
    /// How the upstream answers.
    pub answer: Answer,
    /// The stored row's columns (see `super::COLUMNS`), the request id and
    /// the latencies left out.
    pub expected: Vec<Option<String>>,
}

impl Planned {
    /// The columns the stored row must have, given what went over the
    /// wire: the filter records nginx's `$request_length` and
    /// `$bytes_sent`, headers and body, which the client counted.
    pub fn expected_columns(&self, o: &Outcome) -> Vec<Option<String>> {
        let mut v = Vec::with_capacity(self.expected.len() + 1);
        v.push(Some(o.request_id.clone()));
        v.extend(self.expected.iter().cloned());
        v[REQUEST_BYTES] = Some(o.sent.to_string());
        v[RESPONSE_BYTES] = o.got.as_ref().ok().map(|r| r.wire.to_string());
        v
    }

    /// Appends the request to `out`; returns its length.
    fn bytes(&self, id: &str, out: &mut Vec<u8>) -> usize {
        let before = out.len();
        out.extend_from_slice(self.head.as_bytes());
        out.extend_from_slice(b"X-Kong-Request-Id: ");
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(b"\r\n");
        if self.body > 0 {
            out.extend_from_slice(format!("Content-Length: {}\r\n", self.body).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.resize(out.len() + self.body, b'b');
        out.len() - before
    }
}

/// `n` requests of the reference mix (seed `seed`), shaped by `shape`.
pub fn plan(n: usize, seed: u64, shape: Shape) -> Vec<Planned> {
    let mut mix = Mix::new(MixParams {
        seed,
        ..MixParams::default()
    });
    (0..n)
        .map(|_| {
            let req = mix.next_request();
            let (r, row) = kong_request(&mix, &req, Profile::Kong39);
            let mut method = String::new();
            let mut path = String::new();
            let mut headers = String::new();
            for (name, value) in &r.headers {
                match name.as_str() {
                    ":method" => method.clone_from(value),
                    ":path" => path.clone_from(value),
                    n if n.starts_with(':') => {}
                    n => headers.push_str(&format!("{n}: {value}\r\n")),
                }
            }
            let body = if matches!(method.as_str(), "POST" | "PUT") {
                (req.request_bytes as usize).min(shape.max_request as usize)
            } else {
                0
            };
            let answer = Answer {
                status: req.status,
                body: if req.status == 204 {
                    0
                } else {
                    u32::try_from(req.response_bytes)
                        .unwrap_or(u32::MAX)
                        .min(shape.max_response)
                },
                delay_ms: u32::try_from(req.total_us / 1000 / shape.delay_divisor.max(1))
                    .unwrap_or(u32::MAX)
                    .min(shape.max_delay_ms),
            };
            headers.push_str(&format!(
                "{ANSWER}: {} {} {}\r\n",
                answer.status, answer.body, answer.delay_ms
            ));
            // What the bare engine supplies: no kong.* properties (so no
            // route or service), the client's real address, nginx's sizes
            // (headers and body, counted by the client), the
            // upstream always answering; a client certificate needs TLS,
            // so mTLS consumers show as their consumer headers only.
            let mtls = row.auth_method == Some("mtls");
            let s = |v: &Option<String>| v.clone();
            let groups = (!row.consumer_groups.is_empty()).then(|| row.consumer_groups.join(","));
            let expected = vec![
                s(&row.workspace),
                None,
                None,
                None,
                None,
                s(&row.method),
                s(&row.host),
                s(&row.path),
                row.status.map(|v| v.to_string()),
                Some("upstream".to_owned()),
                // The sizes on the wire, filled in once sent.
                None,
                None,
                if mtls {
                    Some("kong_consumer".to_owned())
                } else {
                    row.auth_method.map(str::to_owned)
                },
                row.trust.map(str::to_owned),
                Some(u8::from(row.anonymous).to_string()),
                s(&row.consumer_id),
                s(&row.consumer_username),
                s(&row.consumer_custom_id),
                if mtls { None } else { s(&row.credential) },
                groups,
                if mtls { None } else { s(&row.subject) },
                s(&row.issuer),
                s(&row.client_id),
                Some("127.0.0.1".to_owned()),
                row.agent_category.map(str::to_owned),
                s(&row.agent_name),
                s(&row.trace_id),
                Some("1".to_owned()),
            ];
            Planned {
                chain: r.chain,
                head: format!("{method} {path} HTTP/1.1\r\n{headers}"),
                body,
                answer,
                expected,
            }
        })
        .collect()
}

/// What became of one request sent.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Index into the plan.
    pub plan: usize,
    /// The request id it carried.
    pub request_id: String,
    /// Its bytes on the wire: request line, headers, body.
    pub sent: usize,
    /// The response, or why none came.
    pub got: Result<Response, String>,
    /// When it was answered (or given up).
    pub at: Instant,
}

/// Requests sent and what became of them.
pub struct Run {
    /// The plan, in chain terms.
    pub plan: Vec<Planned>,
    /// The server port of each chain.
    pub ports: Vec<u16>,
    /// Every request sent.
    pub outcomes: Vec<Outcome>,
    /// Requests sent again after their keep-alive connection closed
    /// before answering.
    pub resent: u64,
    /// Time spent sending.
    pub busy: Duration,
    salt: u64,
    next: u64,
}

impl Run {
    /// A run of `plan` against servers on `ports` (by chain).
    pub fn new(plan: Vec<Planned>, ports: Vec<u16>) -> Run {
        let salt = (u64::from(std::process::id()) << 32)
            ^ std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64;
        Run {
            plan,
            ports,
            outcomes: Vec::new(),
            resent: 0,
            busy: Duration::ZERO,
            salt,
            next: 0,
        }
    }

    /// Sends `count` requests (going round the plan from where the last
    /// call stopped) from `threads` clients, each keeping a keep-alive
    /// connection per server and `depth` requests in flight on it, for at
    /// most `limit`; runs `during` on this thread meanwhile.
    pub fn drive<T>(
        &mut self,
        count: usize,
        threads: usize,
        depth: usize,
        limit: Duration,
        during: impl FnOnce() -> T,
    ) -> T {
        let plan = Arc::new(std::mem::take(&mut self.plan));
        let ports = Arc::new(self.ports.clone());
        let first = self.next;
        let taken = Arc::new(AtomicUsize::new(0));
        let resent = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let deadline = started + limit;
        let salt = self.salt;
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let (plan, ports, taken, resent) =
                    (plan.clone(), ports.clone(), taken.clone(), resent.clone());
                std::thread::spawn(move || {
                    client(
                        &plan, &ports, &taken, &resent, count, depth, deadline, first, salt,
                    )
                })
            })
            .collect();
        let result = during();
        for h in handles {
            self.outcomes
                .extend(h.join().expect("a client thread panicked"));
        }
        self.busy += started.elapsed();
        self.next += taken.load(Ordering::Relaxed).min(count) as u64;
        self.resent += resent.load(Ordering::Relaxed);
        self.plan = Arc::try_unwrap(plan).unwrap_or_else(|p| (*p).clone());
        result
    }

    /// The outcomes that got a response.
    pub fn answered(&self) -> Vec<&Outcome> {
        self.outcomes.iter().filter(|o| o.got.is_ok()).collect()
    }

    /// Requests without a response, or with one the upstream was not told
    /// to give (a 5xx the filter caused would show here).
    pub fn client_errors(&self) -> Vec<String> {
        self.outcomes
            .iter()
            .filter_map(|o| {
                let want = self.plan[o.plan].answer;
                match &o.got {
                    Err(e) => Some(format!("{}: no response: {e}", o.request_id)),
                    Ok(r) if r.status != want.status || r.body != want.body as usize => {
                        Some(format!(
                            "{}: got {} with {} bytes, the upstream was told {} with {}",
                            o.request_id, r.status, r.body, want.status, want.body
                        ))
                    }
                    Ok(_) => None,
                }
            })
            .collect()
    }

    /// Asserts no client error.
    pub fn assert_no_client_errors(&self, log: &str) {
        let errors = self.client_errors();
        let mut by_kind: HashMap<String, usize> = HashMap::new();
        for e in &errors {
            let kind = e.split_once(": ").map_or("", |(_, k)| k);
            let kind: String = kind.chars().take(40).collect();
            *by_kind.entry(kind).or_default() += 1;
        }
        assert!(
            errors.is_empty(),
            "{} of {} requests failed at the client ({by_kind:?}), such as:\n{}\nerror log:\n{log}",
            errors.len(),
            self.outcomes.len(),
            errors[..errors.len().min(5)].join("\n")
        );
    }
}

/// A request on its way: plan index, request id, bytes on the wire.
type Pending = (usize, String, usize);

#[allow(clippy::too_many_arguments)]
fn client(
    plan: &[Planned],
    ports: &[u16],
    taken: &AtomicUsize,
    resent: &AtomicU64,
    count: usize,
    depth: usize,
    deadline: Instant,
    first: u64,
    salt: u64,
) -> Vec<Outcome> {
    let depth = depth.max(1);
    let mut conns: HashMap<u16, Conn> = HashMap::new();
    let mut out = Vec::new();
    let mut bytes = Vec::with_capacity(64 * 1024);
    while Instant::now() < deadline {
        let start = taken.fetch_add(depth, Ordering::Relaxed);
        if start >= count {
            break;
        }
        let end = (start + depth).min(count);
        // Pipeline per server: its requests of this window, in order.
        let mut groups: Vec<(u16, Vec<Pending>)> = Vec::new();
        for k in start..end {
            let serial = first + k as u64;
            let p = (serial % plan.len() as u64) as usize;
            let id = format!("{salt:016x}{serial:016x}");
            let port = ports[plan[p].chain];
            match groups.iter_mut().find(|(q, _)| *q == port) {
                Some((_, g)) => g.push((p, id, 0)),
                None => groups.push((port, vec![(p, id, 0)])),
            }
        }
        for (port, mut group) in groups {
            for (p, id, sent) in &mut group {
                *sent = plan[*p].bytes(id, &mut Vec::new());
            }
            let mut pending: &[Pending] = &group;
            let mut attempts = 0;
            while !pending.is_empty() {
                attempts += 1;
                let fresh = !conns.contains_key(&port);
                if fresh {
                    match Conn::open(port) {
                        Ok(c) => {
                            conns.insert(port, c);
                        }
                        Err(e) if attempts < 5 => {
                            let _ = e;
                            std::thread::sleep(Duration::from_millis(50));
                            continue;
                        }
                        Err(e) => {
                            for (p, id, sent) in pending {
                                out.push(Outcome {
                                    plan: *p,
                                    request_id: id.clone(),
                                    sent: *sent,
                                    got: Err(format!("connect: {e}")),
                                    at: Instant::now(),
                                });
                            }
                            break;
                        }
                    }
                }
                let conn = conns.get_mut(&port).unwrap();
                bytes.clear();
                for (p, id, _) in pending {
                    plan[*p].bytes(id, &mut bytes);
                }
                let mut sent_ok = conn.send(&bytes).is_ok();
                let mut done = 0;
                let mut drop_conn = !sent_ok;
                while sent_ok && done < pending.len() {
                    match conn.read() {
                        Ok(r) => {
                            let (p, id, sent) = &pending[done];
                            out.push(Outcome {
                                plan: *p,
                                request_id: id.clone(),
                                sent: *sent,
                                got: Ok(r),
                                at: Instant::now(),
                            });
                            done += 1;
                            if r.close {
                                drop_conn = true;
                                break;
                            }
                        }
                        Err(Failed::Closed) => {
                            drop_conn = true;
                            sent_ok = false;
                        }
                        Err(Failed::Broken(e)) => {
                            let (p, id, sent) = &pending[done];
                            out.push(Outcome {
                                plan: *p,
                                request_id: id.clone(),
                                sent: *sent,
                                got: Err(e),
                                at: Instant::now(),
                            });
                            done += 1;
                            drop_conn = true;
                            break;
                        }
                    }
                }
                if drop_conn {
                    conns.remove(&port);
                }
                pending = &pending[done..];
                if !pending.is_empty() {
                    // Closed before answering: never taken, so send again
                    // on a new connection; a fresh one that closes at once
                    // is a failure.
                    if attempts >= 5 {
                        for (p, id, sent) in pending {
                            out.push(Outcome {
                                plan: *p,
                                request_id: id.clone(),
                                sent: *sent,
                                got: Err("connection closed without a response".into()),
                                at: Instant::now(),
                            });
                        }
                        break;
                    }
                    resent.fetch_add(pending.len() as u64, Ordering::Relaxed);
                }
            }
        }
    }
    out
}
