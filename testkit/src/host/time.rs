//! Time and ticks: the current time from the test's clock, at Kong's
//! millisecond resolution, and tick periods with ngx_wasm_module's rules.

use wasmtime::{Caller, Linker, Result, bail};

use super::{HostState, memory, status};

pub(crate) fn add(linker: &mut Linker<HostState>) -> Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_current_time_nanoseconds",
        |mut caller: Caller<'_, HostState>, ret: u32| -> Result<i32> {
            let ns = caller.data().clock.now_ms().saturating_mul(1_000_000);
            memory::write(&mut caller, ret, &ns.to_le_bytes())?;
            Ok(status::OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_tick_period_milliseconds",
        |mut caller: Caller<'_, HostState>, period: u32| -> Result<i32> {
            let state = caller.data_mut();
            if state.context_id != state.root_id || !state.phase.is_root() {
                bail!(
                    "set_tick_period in {} of context {}: only a root context may set a tick period",
                    state.phase.callback(),
                    state.context_id
                );
            }
            let now = state.clock.now_ns();
            let Some(root) = state.roots.get_mut(&state.root_id) else {
                bail!("unknown root context {}", state.root_id);
            };
            if period != 0 && root.tick_period_ms != 0 {
                bail!("set_tick_period: a tick period is already set for this root context");
            }
            root.tick_period_ms = period;
            root.next_tick_ns =
                (period != 0).then(|| now.saturating_add(u64::from(period) * 1_000_000));
            Ok(status::OK)
        },
    )?;
    Ok(())
}
