//! A no-op plugin server, the baseline of the per-event CPU measurement
//! (`plugin/tests/cost.rs`): it speaks the same socket protocol as
//! `kong-looker-plugin` and asks the same two PDK questions per log event,
//! but decodes no reply and captures nothing. Blocking threads, one per
//! connection, the least a server can do.
//!
//! `noop_server SOCKET`

use std::io::{BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};

use kong_looker_plugin::rpc::{Call, InstanceState, Reply, call::Command, reply::Result as Answer};
use prost::Message;

fn read_frame(r: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let mut buf = vec![0u8; u32::from_le_bytes(len) as usize];
    r.read_exact(&mut buf)?;
    Ok(buf)
}

fn write_frame(w: &mut impl Write, body: &[u8]) -> std::io::Result<()> {
    let mut out = (body.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(body);
    w.write_all(&out)
}

fn serve(c: UnixStream) -> std::io::Result<()> {
    let mut w = c.try_clone()?;
    let mut r = BufReader::new(c);
    loop {
        let msg = read_frame(&mut r)?;
        let call = Call::decode(msg.as_slice()).map_err(std::io::Error::other)?;
        let result = match call.command {
            Some(Command::StartInstance(_)) => Some(Answer::InstanceStatus(InstanceState {
                name: "kong-looker".into(),
                instance_id: 1,
                config: None,
                started_at: 0,
            })),
            Some(Command::HandleEvent(_)) => {
                for method in ["kong.log.serialize", "kong.request.get_headers"] {
                    write_frame(&mut w, method.as_bytes())?;
                    write_frame(&mut w, &[])?;
                    read_frame(&mut r)?;
                }
                write_frame(&mut w, &[])?;
                None
            }
            _ => None,
        };
        let reply = Reply {
            sequence: call.sequence,
            result,
        };
        write_frame(&mut w, &reply.encode_to_vec())?;
    }
}

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: noop_server SOCKET");
        std::process::exit(2);
    };
    let _ = std::fs::remove_file(&path);
    let listener = match UnixListener::bind(&path) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("noop_server: {e}");
            std::process::exit(1);
        }
    };
    for conn in listener.incoming().flatten() {
        std::thread::spawn(move || serve(conn));
    }
}
