//! Compiles the v1 schema with protox, so no `protoc` is needed on the machine.

use std::error::Error;

const FILES: [&str; 3] = [
    "kong_looker/v1/enums.proto",
    "kong_looker/v1/dictionary.proto",
    "kong_looker/v1/batch.proto",
];

fn main() -> Result<(), Box<dyn Error>> {
    for file in FILES {
        println!("cargo:rerun-if-changed={file}");
    }
    let descriptors = protox::compile(FILES, ["."])?;
    prost_build::Config::new().compile_fds(descriptors)?;
    Ok(())
}
