//! The plugin server: the Unix socket Kong connects to, one thread per
//! connection, and what each command means. Owns the instances (one per
//! plugin configuration Kong starts), the plugin's description (`-dump`
//! and `cmd_get_plugin_info`), and the `log` event: two PDK calls
//! (`kong.log.serialize`, `kong.request.get_headers`), one record through
//! the core's capturer, onto its destination's lane.
//!
//! Errors follow go-pdk's server: the connection is closed, and Kong's
//! call fails. Bad input costs its connection and a stderr line (Kong
//! copies the plugin server's stderr into its error log), never the server.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use kong_looker_core::capture::capturer::Capturer;
use kong_looker_core::config::Config;
use kong_looker_core::log_limit::{Kind, LogLimit, held_note};
use prost::Message;
use serde_json::{Value, json};
use std::io::{BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use tokio::net::UnixListener;

use crate::delivery::{Lane, Lanes, now_ms};
use crate::frame::{self, FrameError};
use crate::rpc::{
    self, Call, DescribePlugin, Event, InstanceState, IntValue, PluginDescription, PluginList,
    Reply, StartInstance, TextValue, call::Command, reply::Result as Answer,
};
use crate::schema;
use crate::source::Snapshot;

/// The plugin's name in Kong (`plugins = bundled,kong-looker`).
pub const PLUGIN_NAME: &str = "kong-looker";
/// Its priority: low, so that it runs after auth plugins, like http-log.
pub const PRIORITY: i32 = 9;
/// The phases it handles.
pub const PHASES: [&str; 1] = ["log"];
/// Headers asked of `kong.request.get_headers` (Kong's own upper bound).
const MAX_HEADERS: i32 = 1000;

/// Lines of one kind per interval before the rest are held back: a few
/// different faults in a row are each named, a flood is not.
const LOG_BURST: u32 = 10;

/// Writes a line to stderr, which Kong copies into its error log.
pub fn log(line: &str) {
    eprintln!("kong-looker-plugin: {line}");
}

/// [`log`] for lines that input can repeat at will (bad frames, capture
/// errors, a full disk): at most [`LOG_BURST`] per kind per interval, with
/// the count of those held back. The counts stay whole in the metrics.
pub fn log_limited(kind: Kind, line: &str) {
    static LIMIT: Mutex<Option<LogLimit>> = Mutex::new(None);
    let admitted = LIMIT
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get_or_insert_with(|| LogLimit::with_burst(LOG_BURST))
        .admit(kind, now_ms());
    if let Some(held) = admitted {
        log(&format!("{line}{}", held_note(held)));
    }
}

/// Why a call ended its connection.
#[derive(Debug)]
pub enum CallError {
    /// The socket or a frame failed.
    Frame(FrameError),
    /// The call was wrong; the message says how.
    Refused(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Frame(e) => e.fmt(f),
            CallError::Refused(m) => f.write_str(m),
        }
    }
}

impl From<FrameError> for CallError {
    fn from(e: FrameError) -> Self {
        CallError::Frame(e)
    }
}

/// One plugin configuration, started by Kong.
pub struct Instance {
    id: i32,
    started_at_s: i64,
    capturer: Mutex<Capturer>,
    lane: Arc<Lane>,
}

impl Instance {
    fn state(&self) -> InstanceState {
        InstanceState {
            name: PLUGIN_NAME.into(),
            instance_id: self.id,
            config: None,
            started_at: self.started_at_s,
        }
    }

    /// Captures one request from its snapshot onto the lane.
    pub fn capture(&self, snapshot: &Snapshot<'_>) {
        thread_local! {
            // Each connection thread's header map, reused event to event.
            static MAP: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
        }
        let now = now_ms();
        let started = snapshot.started_at_ms().unwrap_or(now);
        let mut map = MAP.take();
        snapshot.header_map_into(&mut map);
        let mut capturer = self.capturer.lock().unwrap_or_else(PoisonError::into_inner);
        let facts = capturer.request_facts(map, started);
        let lane = &self.lane;
        capturer.capture(&facts, snapshot, now, |record| lane.push(record));
        drop(capturer);
        MAP.set(facts.into_map());
    }
}

/// The server's state, shared by every connection.
pub struct Server {
    instances: RwLock<HashMap<i32, Arc<Instance>>>,
    next_id: AtomicI32,
    lanes: Arc<Lanes>,
    node_known: AtomicBool,
    schema: String,
    loaded_at_s: i64,
    active: AtomicUsize,
}

impl Server {
    /// A server with no instances, shipping through `lanes`.
    pub fn new(lanes: Arc<Lanes>) -> Result<Self, String> {
        let schema = schema::kong_schema(PLUGIN_NAME)?.to_string();
        Ok(Server {
            instances: RwLock::new(HashMap::new()),
            next_id: AtomicI32::new(0),
            lanes,
            node_known: AtomicBool::new(false),
            schema,
            loaded_at_s: now_ms().div_euclid(1000),
            active: AtomicUsize::new(0),
        })
    }

    /// The lanes.
    pub fn lanes(&self) -> &Lanes {
        &self.lanes
    }

    /// Plugin configurations started and not closed.
    pub fn instance_count(&self) -> usize {
        self.instances
            .read()
            .map(|i| i.len())
            .unwrap_or_else(|e| e.into_inner().len())
    }

    /// Calls being answered right now.
    pub fn active_calls(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }

    /// What `-dump` prints: the JSON Kong's `_query_cmd` reads.
    pub fn dump(&self) -> Result<Value, String> {
        Ok(json!({
            "Protocol": rpc::PROTOCOL,
            "Plugins": [{
                "Name": PLUGIN_NAME,
                "Priority": PRIORITY,
                "Version": env!("CARGO_PKG_VERSION"),
                "Schema": schema::kong_schema(PLUGIN_NAME)?,
                "Phases": PHASES,
            }],
        }))
    }

    fn describe(&self) -> PluginDescription {
        PluginDescription {
            name: PLUGIN_NAME.into(),
            updated_at: self.loaded_at_s,
            loaded_at: self.loaded_at_s,
            phases: PHASES.iter().map(|p| (*p).to_string()).collect(),
            version: env!("CARGO_PKG_VERSION").into(),
            priority: PRIORITY,
            schema: self.schema.clone(),
        }
    }

    /// Starts an instance for a config as Kong sends it.
    pub fn start_instance(&self, start: &StartInstance) -> Result<InstanceState, String> {
        if start.name != PLUGIN_NAME {
            return Err(format!("no plugin named {:?} here", start.name));
        }
        let config = parse_config(&start.config).map_err(|e| format!("config refused: {e}"))?;
        let lane = self.lanes.lane_for(&config)?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        let instance = Arc::new(Instance {
            id,
            started_at_s: now_ms().div_euclid(1000),
            capturer: Mutex::new(Capturer::new(config, self.lanes.next_seed())),
            lane,
        });
        let state = instance.state();
        self.instances
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, instance);
        Ok(state)
    }

    fn instance(&self, id: i32) -> Option<Arc<Instance>> {
        self.instances
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned()
    }

    /// Serves connections until `stop` resolves.
    pub async fn serve(self: Arc<Self>, listener: UnixListener, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => return,
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => {
                        // Each connection gets a plain thread with blocking
                        // reads: one syscall per frame instead of a
                        // readiness wait and a retry, which measurably
                        // costs per event. Kong's pools keep few of them.
                        let stream = stream
                            .into_std()
                            .and_then(|s| s.set_nonblocking(false).map(|()| s));
                        let server = Arc::clone(&self);
                        let spawned = stream.map_err(|e| e.to_string()).and_then(|s| {
                            std::thread::Builder::new()
                                .name("kong-looker-conn".into())
                                .spawn(move || server.connection(s))
                                .map_err(|e| e.to_string())
                        });
                        if let Err(e) = spawned {
                            log(&format!("cannot serve a connection: {e}"));
                        }
                    }
                    // Out of descriptors, say: wait, don't spin.
                    Err(e) => {
                        log(&format!("accept failed: {e}"));
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                },
            }
        }
    }

    /// One connection: calls until Kong closes it or a call fails.
    pub fn connection(&self, stream: UnixStream) {
        let mut w = match stream.try_clone() {
            Ok(w) => w,
            Err(e) => {
                log(&format!("cannot serve a connection: {e}"));
                return;
            }
        };
        let mut r = BufReader::new(stream);
        loop {
            let bytes = match frame::read(&mut r) {
                Ok(b) => b,
                Err(FrameError::Closed) => return,
                Err(e) => {
                    log_limited(Kind::BadInput, &format!("bad frame: {e}"));
                    return;
                }
            };
            self.active.fetch_add(1, Ordering::AcqRel);
            let result = self.call(&bytes, &mut r, &mut w);
            self.active.fetch_sub(1, Ordering::AcqRel);
            match result {
                Ok((reply, ended_pdk)) => {
                    let reply = reply.encode_to_vec();
                    let frames: &[&[u8]] = if ended_pdk { &[&[], &reply] } else { &[&reply] };
                    if let Err(e) = frame::write_all(&mut w, frames) {
                        log_limited(Kind::BadInput, &format!("cannot answer: {e}"));
                        return;
                    }
                }
                Err(e) => {
                    log_limited(Kind::BadInput, &e.to_string());
                    return;
                }
            }
        }
    }

    /// Answers one `RpcCall`: the `RpcReturn`, and whether a PDK loop must
    /// be ended (with an empty frame) before it.
    pub fn call<R: Read, W: Write>(
        &self,
        bytes: &[u8],
        r: &mut R,
        w: &mut W,
    ) -> Result<(Reply, bool), CallError> {
        let call = Call::decode(bytes)
            .map_err(|e| CallError::Refused(format!("malformed RpcCall: {e}")))?;
        let sequence = call.sequence;
        let mut ended_pdk = false;
        let result = match call.command {
            Some(Command::ListPlugins(_)) => Some(Answer::PluginNames(PluginList {
                names: vec![PLUGIN_NAME.into()],
            })),
            Some(Command::DescribePlugin(DescribePlugin { name })) => {
                if name != PLUGIN_NAME {
                    return Err(CallError::Refused(format!("no plugin named {name:?} here")));
                }
                Some(Answer::PluginInfo(self.describe()))
            }
            Some(Command::StartInstance(start)) => {
                let state = self.start_instance(&start).map_err(CallError::Refused)?;
                Some(Answer::InstanceStatus(state))
            }
            Some(Command::InstanceStatus(q)) => {
                let instance = self.instance(q.instance_id).ok_or_else(|| {
                    CallError::Refused(format!("no plugin instance {}", q.instance_id))
                })?;
                Some(Answer::InstanceStatus(instance.state()))
            }
            Some(Command::CloseInstance(q)) => {
                let removed = self
                    .instances
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(&q.instance_id)
                    .ok_or_else(|| {
                        CallError::Refused(format!("no plugin instance {}", q.instance_id))
                    })?;
                Some(Answer::InstanceStatus(removed.state()))
            }
            Some(Command::HandleEvent(event)) => {
                self.event(&event, r, w)?;
                ended_pdk = true;
                None
            }
            None => {
                return Err(CallError::Refused("RpcCall without a known command".into()));
            }
        };
        Ok((Reply { sequence, result }, ended_pdk))
    }

    /// A `log` event: asks Kong for the snapshot and captures. The empty
    /// frame that ends the PDK loop goes out with the `RpcReturn`, in one
    /// write ([`Server::call`] says which calls need it).
    fn event<R: Read, W: Write>(
        &self,
        event: &Event,
        r: &mut R,
        w: &mut W,
    ) -> Result<(), CallError> {
        let Some(instance) = self.instance(event.instance_id) else {
            // pb_rpc.lua resets its instances only when the error text
            // says "no plugin instance"; a closed connection alone would
            // not reach its message. A PDK call of that name fails in
            // Kong with the name in the error, which does.
            let message = format!("no plugin instance {}", event.instance_id);
            frame::write_all(w, &[message.as_bytes(), &[]])?;
            return Err(CallError::Refused(message));
        };
        if !PHASES.contains(&event.event_name.as_str()) {
            return Err(CallError::Refused(format!(
                "undefined phase {:?}",
                event.event_name
            )));
        }
        if !self.node_known.swap(true, Ordering::AcqRel) {
            let reply = pdk(r, w, rpc::NODE_ID, &[])?;
            if let Ok(id) = TextValue::decode(reply.as_slice()) {
                self.lanes.set_node_id(&id.v);
            }
        }
        let serialized = pdk(r, w, rpc::SERIALIZE, &[])?;
        let headers = pdk(
            r,
            w,
            rpc::GET_HEADERS,
            &IntValue { v: MAX_HEADERS }.encode_to_vec(),
        )?;
        match Snapshot::decode(&serialized, &headers) {
            Ok(snapshot) => instance.capture(&snapshot),
            Err(e) => {
                instance.lane.count_capture_error();
                log_limited(Kind::CaptureError, &format!("capture error: {e}"));
            }
        }
        Ok(())
    }
}

/// One PDK call: the method name, its encoded argument, Kong's reply.
fn pdk<R: Read, W: Write>(
    r: &mut R,
    w: &mut W,
    method: &str,
    arg: &[u8],
) -> Result<Vec<u8>, CallError> {
    let during = |e: FrameError| match e {
        FrameError::Closed => {
            CallError::Refused(format!("Kong closed the connection during {method}"))
        }
        e => CallError::Refused(format!("{e} during {method}")),
    };
    frame::write_all(w, &[method.as_bytes(), arg]).map_err(during)?;
    frame::read(r).map_err(during)
}

/// The core's config from Kong's JSON, with Kong's additions removed;
/// the error names the field.
pub fn parse_config(bytes: &[u8]) -> Result<Config, String> {
    let cleaned = match serde_json::from_slice::<Value>(bytes) {
        Ok(mut v) => {
            schema::normalize(&mut v)?;
            serde_json::to_vec(&v).map_err(|e| e.to_string())?
        }
        // Let the core name what is wrong with it.
        Err(_) => bytes.to_vec(),
    };
    Config::parse(&cleaned).map_err(|e| e.to_string())
}
