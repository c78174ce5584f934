//! The WASI preview 1 calls ngx_wasm_module provides: stdout and stderr go
//! to the log (info and error), the environment is empty, clocks read the
//! test's clock at millisecond resolution, `random_get` gives deterministic
//! bytes, and `proc_exit` traps. Other WASI imports trap.

use wasmtime::{Caller, Linker, Result, bail};

use super::{HostState, memory};

const ERRNO_SUCCESS: i32 = 0;
const ERRNO_BADF: i32 = 8;
const ERRNO_INVAL: i32 = 28;
const M: &str = "wasi_snapshot_preview1";

pub(crate) fn add(linker: &mut Linker<HostState>) -> Result<()> {
    linker.func_wrap(
        M,
        "fd_write",
        |mut caller: Caller<'_, HostState>,
         fd: i32,
         iovs: u32,
         iovs_len: u32,
         nwritten: u32|
         -> Result<i32> {
            if fd != 1 && fd != 2 {
                return Ok(ERRNO_BADF);
            }
            let raw = memory::read(&mut caller, iovs, iovs_len.saturating_mul(8))?;
            let mut text = Vec::new();
            for iov in raw.chunks_exact(8) {
                let ptr = u32::from_le_bytes([iov[0], iov[1], iov[2], iov[3]]);
                let len = u32::from_le_bytes([iov[4], iov[5], iov[6], iov[7]]);
                text.extend(memory::read(&mut caller, ptr, len)?);
            }
            let written = u32::try_from(text.len())?;
            let message = String::from_utf8_lossy(&text).trim_end().to_owned();
            caller.data().log(if fd == 1 { 2 } else { 4 }, message);
            memory::write_u32(&mut caller, nwritten, written)?;
            Ok(ERRNO_SUCCESS)
        },
    )?;
    for name in ["environ_sizes_get", "args_sizes_get"] {
        linker.func_wrap(
            M,
            name,
            |mut caller: Caller<'_, HostState>, count: u32, size: u32| -> Result<i32> {
                memory::write_u32(&mut caller, count, 0)?;
                memory::write_u32(&mut caller, size, 0)?;
                Ok(ERRNO_SUCCESS)
            },
        )?;
    }
    for name in ["environ_get", "args_get"] {
        linker.func_wrap(
            M,
            name,
            |_c: Caller<'_, HostState>, _a: u32, _b: u32| -> Result<i32> { Ok(ERRNO_SUCCESS) },
        )?;
    }
    linker.func_wrap(
        M,
        "clock_time_get",
        |mut caller: Caller<'_, HostState>, id: i32, _precision: i64, ret: u32| -> Result<i32> {
            // Realtime and monotonic both read the test clock, in ms.
            if id != 0 && id != 1 {
                return Ok(ERRNO_INVAL);
            }
            let ns = caller.data().clock.now_ms().saturating_mul(1_000_000);
            memory::write(&mut caller, ret, &ns.to_le_bytes())?;
            Ok(ERRNO_SUCCESS)
        },
    )?;
    linker.func_wrap(
        M,
        "random_get",
        |mut caller: Caller<'_, HostState>, buf: u32, len: u32| -> Result<i32> {
            let mut bytes = Vec::with_capacity(len as usize);
            let state = caller.data_mut();
            while bytes.len() < len as usize {
                // splitmix64: deterministic per worker, different per call.
                state.random = state.random.wrapping_add(0x9e37_79b9_7f4a_7c15);
                let mut z = state.random;
                z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
                z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
                bytes.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
            }
            bytes.truncate(len as usize);
            memory::write(&mut caller, buf, &bytes)?;
            Ok(ERRNO_SUCCESS)
        },
    )?;
    linker.func_wrap(
        M,
        "proc_exit",
        |_c: Caller<'_, HostState>, code: i32| -> Result<()> {
            bail!("proc_exit({code}): ngx_wasm_module traps")
        },
    )?;
    Ok(())
}
