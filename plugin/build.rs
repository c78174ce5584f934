//! Compiles the plugin socket schema with protox, so no `protoc` is needed.

use std::error::Error;

const FILE: &str = "kong_plugin_socket.proto";

fn main() -> Result<(), Box<dyn Error>> {
    println!("cargo:rerun-if-changed=proto/{FILE}");
    let descriptors = protox::compile([FILE], ["proto"])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
