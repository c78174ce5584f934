//! A server's unix socket as a client that waits for it sees it: the
//! path watched without pause, and one connect the moment it appears.

use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Starts `command`, connects once to `socket` as soon as the path
/// exists, stops the server, and gives the connect's result. A server
/// whose path appears before it listens is refused now and then, so
/// callers repeat this a few hundred times.
pub fn connect_at_first_sight(command: &mut Command, socket: &Path) -> std::io::Result<()> {
    let mut child = command.stderr(Stdio::null()).spawn()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() && Instant::now() < deadline {
        std::hint::spin_loop();
    }
    let connected = UnixStream::connect(socket);
    let _ = child.kill();
    let _ = child.wait();
    connected.map(drop)
}
