//! Kong's side of the external-plugin socket, protocol `ProtoBuf:1`, for
//! tests and benches of a plugin server. It does what Kong's
//! `kong/runloop/plugin_servers/` does, step for step:
//!
//! - the query: run the server binary with `-dump` and read its JSON
//!   (`process.lua`, `query_external_plugin_info`);
//! - each call (`rpc/pb_rpc.lua`, `Rpc:call`): take a connection from the
//!   keepalive pool or open one, bump the message id, send a framed
//!   `RpcCall` (a 4-byte little-endian length, then the bytes); for
//!   `cmd_handle_event`, loop reading a method-name frame and an argument
//!   frame and answering each with one frame until an empty method name;
//!   read the framed `RpcReturn`, check its sequence, and put the
//!   connection back in the pool. Any failure drops the connection;
//! - the PDK calls of a `log` event are answered from a snapshot, as
//!   `plugin.lua`'s log timer does: `kong.log.serialize`,
//!   `kong.request.get_header(s)`, `kong.response.get_status`,
//!   `kong.nginx.req_start_time`, and `kong.node.get_id`. Any other method
//!   fails the call with Kong's `method "..." not found`;
//! - [`KongWorker::log`] keeps one instance per plugin configuration and,
//!   like `Rpc:handle_event`, resets and retries when the error says
//!   "no plugin instance" or "closed".
//!
//! The messages are written here by hand from Kong's
//! `kong/include/kong/pluginsocket.proto`, apart from the plugin's own
//! generated code, so that a test catches a field number either side got
//! wrong.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use prost::Message;

/// `kong_plugin_protocol` messages, as Kong's schema numbers them.
#[allow(missing_docs)]
pub mod pb {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct CmdGetPluginNames {}
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct CmdGetPluginInfo {
        #[prost(string, tag = "1")]
        pub name: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct CmdStartInstance {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(bytes = "vec", tag = "2")]
        pub config: Vec<u8>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct CmdInstance {
        #[prost(int32, tag = "1")]
        pub instance_id: i32,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct CmdHandleEvent {
        #[prost(int32, tag = "1")]
        pub instance_id: i32,
        #[prost(string, tag = "2")]
        pub event_name: String,
    }
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Call {
        #[prost(message, tag = "31")]
        CmdGetPluginNames(CmdGetPluginNames),
        #[prost(message, tag = "32")]
        CmdGetPluginInfo(CmdGetPluginInfo),
        #[prost(message, tag = "33")]
        CmdStartInstance(CmdStartInstance),
        #[prost(message, tag = "34")]
        CmdGetInstanceStatus(CmdInstance),
        #[prost(message, tag = "35")]
        CmdCloseInstance(CmdInstance),
        #[prost(message, tag = "36")]
        CmdHandleEvent(CmdHandleEvent),
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RpcCall {
        #[prost(int64, tag = "1")]
        pub sequence: i64,
        #[prost(oneof = "Call", tags = "31, 32, 33, 34, 35, 36")]
        pub call: Option<Call>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PluginNames {
        #[prost(string, repeated, tag = "1")]
        pub names: Vec<String>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PluginInfo {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(int64, tag = "2")]
        pub updated_at: i64,
        #[prost(int64, tag = "3")]
        pub loaded_at: i64,
        #[prost(string, repeated, tag = "4")]
        pub phases: Vec<String>,
        #[prost(string, tag = "5")]
        pub version: String,
        #[prost(int32, tag = "6")]
        pub priority: i32,
        #[prost(string, tag = "7")]
        pub schema: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct InstanceStatus {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(int32, tag = "2")]
        pub instance_id: i32,
        #[prost(message, optional, tag = "3")]
        pub config: Option<prost_types::Value>,
        #[prost(int64, tag = "4")]
        pub started_at: i64,
    }
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Return {
        #[prost(message, tag = "31")]
        PluginNames(PluginNames),
        #[prost(message, tag = "32")]
        PluginInfo(PluginInfo),
        #[prost(message, tag = "33")]
        InstanceStatus(InstanceStatus),
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RpcReturn {
        #[prost(int64, tag = "1")]
        pub sequence: i64,
        #[prost(oneof = "Return", tags = "31, 32, 33")]
        pub r#return: Option<Return>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Int {
        #[prost(int32, tag = "1")]
        pub v: i32,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Number {
        #[prost(double, tag = "1")]
        pub v: f64,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct KString {
        #[prost(string, tag = "1")]
        pub v: String,
    }
}

/// Kong's cap on a frame it reads is its memory; this driver's is 64 MiB.
const MAX_FRAME: usize = 64 * 1024 * 1024;

/// What Kong holds for one request's log phase (`plugin.lua`).
#[derive(Clone, Debug, Default)]
pub struct LogSnapshot {
    /// `kong.log.serialize()`.
    pub serialize: serde_json::Value,
    /// `ngx.req.get_headers()`: lowercase names, repeated names kept.
    pub request_headers: Vec<(String, String)>,
    /// `ngx.status`.
    pub response_status: i32,
    /// `ngx.req.start_time()`, seconds.
    pub req_start_time: f64,
    /// `kong.node.get_id()`.
    pub node_id: String,
}

/// What one event cost in PDK calls.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventReport {
    /// The PDK methods the plugin called, in order.
    pub pdk_calls: Vec<String>,
}

/// Runs `binary -dump -kong-prefix prefix`, as `_query_cmd` would, and
/// parses its output.
pub fn query(binary: &Path, prefix: &Path) -> Result<serde_json::Value, String> {
    let out = std::process::Command::new(binary)
        .arg("-dump")
        .arg("-kong-prefix")
        .arg(prefix)
        .output()
        .map_err(|e| format!("run {}: {e}", binary.display()))?;
    if !out.status.success() {
        return Err(format!(
            "-dump failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("not a plugin info table: {e}"))
}

/// Writes a frame as pb_rpc.lua's `write_frame` does.
pub fn write_frame(c: &mut impl Write, msg: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(msg.len())
        .map_err(|_| std::io::Error::other("frame too large"))?
        .to_le_bytes();
    c.write_all(&len)?;
    c.write_all(msg)
}

/// Reads a frame as pb_rpc.lua's `read_frame` does; a closed socket reads
/// as the error `closed`, as in a cosocket.
pub fn read_frame(c: &mut impl Read) -> Result<Vec<u8>, String> {
    let mut len = [0u8; 4];
    c.read_exact(&mut len).map_err(io_error)?;
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(format!("frame of {len} bytes"));
    }
    let mut buf = vec![0u8; len];
    c.read_exact(&mut buf).map_err(io_error)?;
    Ok(buf)
}

fn io_error(e: std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof
        | std::io::ErrorKind::ConnectionReset
        | std::io::ErrorKind::BrokenPipe => "closed".into(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => "timeout".into(),
        _ => e.to_string(),
    }
}

/// One worker's RPC client: its keepalive pool and message ids.
pub struct PluginSocket {
    socket: PathBuf,
    pool: Vec<UnixStream>,
    msg_id: i64,
    /// Connections opened so far (the pool's misses).
    pub connects: u64,
    /// Calls read with a connection from the pool.
    pub reused: u64,
}

impl PluginSocket {
    /// A client of the server listening at `socket`.
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        PluginSocket {
            socket: socket.into(),
            pool: Vec::new(),
            msg_id: 0,
            connects: 0,
            reused: 0,
        }
    }

    /// `cmd_get_plugin_names`.
    pub fn plugin_names(&mut self) -> Result<Vec<String>, String> {
        match self.call(pb::Call::CmdGetPluginNames(pb::CmdGetPluginNames {}), None)? {
            (Some(pb::Return::PluginNames(n)), _) => Ok(n.names),
            other => Err(format!("unexpected return {:?}", other.0)),
        }
    }

    /// `cmd_get_plugin_info`.
    pub fn plugin_info(&mut self, name: &str) -> Result<pb::PluginInfo, String> {
        let call = pb::Call::CmdGetPluginInfo(pb::CmdGetPluginInfo { name: name.into() });
        match self.call(call, None)? {
            (Some(pb::Return::PluginInfo(i)), _) => Ok(i),
            other => Err(format!("unexpected return {:?}", other.0)),
        }
    }

    /// `call_start_instance`: the config as cjson would encode it.
    pub fn start_instance(&mut self, name: &str, config: &str) -> Result<i32, String> {
        let call = pb::Call::CmdStartInstance(pb::CmdStartInstance {
            name: name.into(),
            config: config.as_bytes().to_vec(),
        });
        match self.call(call, None)? {
            (Some(pb::Return::InstanceStatus(s)), _) => Ok(s.instance_id),
            other => Err(format!("unexpected return {:?}", other.0)),
        }
    }

    /// `cmd_get_instance_status`.
    pub fn instance_status(&mut self, id: i32) -> Result<pb::InstanceStatus, String> {
        let call = pb::Call::CmdGetInstanceStatus(pb::CmdInstance { instance_id: id });
        match self.call(call, None)? {
            (Some(pb::Return::InstanceStatus(s)), _) => Ok(s),
            other => Err(format!("unexpected return {:?}", other.0)),
        }
    }

    /// `call_close_instance`.
    pub fn close_instance(&mut self, id: i32) -> Result<pb::InstanceStatus, String> {
        let call = pb::Call::CmdCloseInstance(pb::CmdInstance { instance_id: id });
        match self.call(call, None)? {
            (Some(pb::Return::InstanceStatus(s)), _) => Ok(s),
            other => Err(format!("unexpected return {:?}", other.0)),
        }
    }

    /// `cmd_handle_event` with the PDK loop answered from `snapshot`.
    pub fn handle_event(
        &mut self,
        id: i32,
        phase: &str,
        snapshot: &LogSnapshot,
    ) -> Result<EventReport, String> {
        let call = pb::Call::CmdHandleEvent(pb::CmdHandleEvent {
            instance_id: id,
            event_name: phase.into(),
        });
        self.call(call, Some(snapshot)).map(|(_, r)| r)
    }

    /// `Rpc:call`.
    fn call(
        &mut self,
        call: pb::Call,
        bridge: Option<&LogSnapshot>,
    ) -> Result<(Option<pb::Return>, EventReport), String> {
        self.msg_id += 1;
        // pb_rpc.lua bumps its local copy again before sending.
        let msg_id = self.msg_id + 1;
        let mut c = match self.pool.pop() {
            Some(c) => {
                self.reused += 1;
                c
            }
            None => {
                let c = UnixStream::connect(&self.socket)
                    .map_err(|e| format!("trying to connect: {e}"))?;
                c.set_read_timeout(Some(Duration::from_secs(30)))
                    .map_err(|e| e.to_string())?;
                self.connects += 1;
                c
            }
        };
        let msg = pb::RpcCall {
            sequence: msg_id,
            call: Some(call),
        }
        .encode_to_vec();
        write_frame(&mut c, &msg).map_err(io_error)?;
        let mut report = EventReport::default();
        if let Some(snapshot) = bridge {
            loop {
                let method = read_frame(&mut c)?;
                if method.is_empty() {
                    break;
                }
                let args = read_frame(&mut c)?;
                let method = String::from_utf8_lossy(&method).into_owned();
                let reply = answer_pdk(snapshot, &method, &args)?;
                report.pdk_calls.push(method);
                write_frame(&mut c, &reply).map_err(io_error)?;
            }
        }
        let msg = read_frame(&mut c)?;
        let ret = pb::RpcReturn::decode(msg.as_slice()).map_err(|e| e.to_string())?;
        if ret.sequence != msg_id {
            return Err(format!("sequence {} answered {msg_id}", ret.sequence));
        }
        self.pool.push(c);
        Ok((ret.r#return, report))
    }
}

/// `call_pdk` over the log snapshot.
fn answer_pdk(s: &LogSnapshot, method: &str, args: &[u8]) -> Result<Vec<u8>, String> {
    let string = |v: String| pb::KString { v }.encode_to_vec();
    Ok(match method {
        "kong.log.serialize" => string(s.serialize.to_string()),
        "kong.request.get_headers" => {
            pb::Int::decode(args).map_err(|e| e.to_string())?;
            headers_struct(&s.request_headers).encode_to_vec()
        }
        "kong.request.get_header" => {
            let name = pb::KString::decode(args).map_err(|e| e.to_string())?.v;
            let name = name.to_ascii_lowercase();
            match s.request_headers.iter().find(|(n, _)| *n == name) {
                Some((_, v)) => string(v.clone()),
                // A nil reply is an empty frame.
                None => Vec::new(),
            }
        }
        "kong.response.get_status" => pb::Int {
            v: s.response_status,
        }
        .encode_to_vec(),
        "kong.nginx.req_start_time" => pb::Number {
            v: s.req_start_time,
        }
        .encode_to_vec(),
        "kong.node.get_id" => string(s.node_id.clone()),
        other => return Err(format!("method \"{other}\" not found")),
    })
}

/// `ngx.req.get_headers()` as pb_rpc.lua wraps it: a repeated header is
/// a list of strings.
fn headers_struct(headers: &[(String, String)]) -> prost_types::Struct {
    use prost_types::value::Kind;
    let mut grouped: Vec<(String, Vec<String>)> = Vec::new();
    for (n, v) in headers {
        let n = n.to_ascii_lowercase();
        match grouped.iter_mut().find(|(g, _)| *g == n) {
            Some((_, vs)) => vs.push(v.clone()),
            None => grouped.push((n, vec![v.clone()])),
        }
    }
    let text = |v: String| prost_types::Value {
        kind: Some(Kind::StringValue(v)),
    };
    prost_types::Struct {
        fields: grouped
            .into_iter()
            .map(|(n, mut vs)| {
                let value = if vs.len() == 1 {
                    text(vs.remove(0))
                } else {
                    prost_types::Value {
                        kind: Some(Kind::ListValue(prost_types::ListValue {
                            values: vs.into_iter().map(text).collect(),
                        })),
                    }
                };
                (n, value)
            })
            .collect(),
    }
}

/// One Kong worker running a plugin: its socket client and its instances,
/// one per plugin configuration (`plugin.lua`, `get_instance_id`).
pub struct KongWorker {
    /// The RPC client.
    pub rpc: PluginSocket,
    plugin: String,
    instances: HashMap<String, i32>,
    /// Instance resets seen (errors naming "no plugin instance" or
    /// "closed").
    pub resets: u64,
}

impl KongWorker {
    /// A worker for `plugin` at `socket`.
    pub fn new(socket: impl Into<PathBuf>, plugin: &str) -> Self {
        KongWorker {
            rpc: PluginSocket::new(socket),
            plugin: plugin.into(),
            instances: HashMap::new(),
            resets: 0,
        }
    }

    /// The instance for a config, started on first use.
    pub fn instance_for(&mut self, config: &str) -> Result<i32, String> {
        if let Some(id) = self.instances.get(config) {
            return Ok(*id);
        }
        let id = self.rpc.start_instance(&self.plugin, config)?;
        self.instances.insert(config.to_owned(), id);
        Ok(id)
    }

    /// A plugin configuration changed (its `__seq__` moved): start an
    /// instance for the new config, then close the old one, as
    /// `get_instance_id` does. Events under `new` use the new instance.
    pub fn reconfigure(&mut self, old: &str, new: &str) -> Result<i32, String> {
        let old_id = self.instances.remove(old);
        let id = self.instance_for(new)?;
        if let Some(old_id) = old_id {
            // Kong ignores this call's error: another worker may have
            // closed it first.
            let _ = self.rpc.close_instance(old_id);
        }
        Ok(id)
    }

    /// The log phase for one request under `config`, as `Rpc:handle_event`
    /// runs it: on "no plugin instance" or "closed", forget the instances
    /// and try again (once here; Kong recurses).
    pub fn log(&mut self, config: &str, snapshot: &LogSnapshot) -> Result<EventReport, String> {
        let id = self.instance_for(config)?;
        match self.rpc.handle_event(id, "log", snapshot) {
            Ok(r) => Ok(r),
            Err(e) => {
                let lower = e.to_lowercase();
                if lower.contains("no plugin instance") || lower.contains("closed") {
                    self.resets += 1;
                    self.instances.clear();
                    let id = self.instance_for(config)?;
                    self.rpc.handle_event(id, "log", snapshot)
                } else {
                    Err(e)
                }
            }
        }
    }
}
