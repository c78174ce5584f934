//! `proxy_log`: lines go to the worker's log, which tests read.

use wasmtime::{Caller, Linker, Result};

use super::{HostState, memory, status};

pub(crate) fn add(linker: &mut Linker<HostState>) -> Result<()> {
    linker.func_wrap(
        "env",
        "proxy_log",
        |mut caller: Caller<'_, HostState>, level: u32, ptr: u32, len: u32| -> Result<i32> {
            let bytes = memory::read(&mut caller, ptr, len)?;
            let message = String::from_utf8_lossy(&bytes).into_owned();
            caller.data().log(level, message);
            Ok(status::OK)
        },
    )?;
    Ok(())
}
