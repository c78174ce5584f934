//! Metrics (Kong 3.8+): defined by name and kind, shared by all workers,
//! and read back by tests as Kong's Prometheus plugin would export them.

use wasmtime::{Caller, Linker, Result, bail};

use super::{HostState, memory, status};
use crate::shared::{Metric, MetricKind};

pub(crate) fn add(linker: &mut Linker<HostState>) -> Result<()> {
    linker.func_wrap(
        "env",
        "proxy_define_metric",
        |mut caller: Caller<'_, HostState>,
         kind: u32,
         name_ptr: u32,
         name_size: u32,
         ret_id: u32|
         -> Result<i32> {
            let name = memory::read_str(&mut caller, name_ptr, name_size)?;
            let kind = match kind {
                0 => MetricKind::Counter,
                1 => MetricKind::Gauge,
                2 => MetricKind::Histogram,
                _ => return Ok(status::BAD_ARGUMENT),
            };
            // Kong caps names, `pw:<filter>:` prefix included, at 256.
            if name.len() + caller.data().filter_name.len() + 4 > 256 {
                return Ok(status::BAD_ARGUMENT);
            }
            let id = {
                let Ok(mut shared) = caller.data().shared.lock() else {
                    bail!("shared state poisoned");
                };
                match shared.metrics.iter().position(|m| m.name == name) {
                    Some(i) => i + 1,
                    None => {
                        shared.metrics.push(Metric {
                            name,
                            kind,
                            value: 0,
                            count: 0,
                        });
                        shared.metrics.len()
                    }
                }
            };
            memory::write_u32(&mut caller, ret_id, u32::try_from(id)?)?;
            Ok(status::OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_increment_metric",
        |caller: Caller<'_, HostState>, id: u32, offset: i64| -> Result<i32> {
            let Ok(mut shared) = caller.data().shared.lock() else {
                bail!("shared state poisoned");
            };
            let Some(m) = shared.metrics.get_mut((id as usize).wrapping_sub(1)) else {
                return Ok(status::NOT_FOUND);
            };
            if m.kind == MetricKind::Histogram || (m.kind == MetricKind::Counter && offset < 0) {
                return Ok(status::BAD_ARGUMENT);
            }
            m.value = m.value.saturating_add(offset);
            Ok(status::OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_record_metric",
        |caller: Caller<'_, HostState>, id: u32, value: u64| -> Result<i32> {
            let Ok(mut shared) = caller.data().shared.lock() else {
                bail!("shared state poisoned");
            };
            let Some(m) = shared.metrics.get_mut((id as usize).wrapping_sub(1)) else {
                return Ok(status::NOT_FOUND);
            };
            let value = i64::try_from(value).unwrap_or(i64::MAX);
            match m.kind {
                MetricKind::Histogram => {
                    m.value = m.value.saturating_add(value);
                    m.count = m.count.saturating_add(1);
                }
                MetricKind::Gauge => m.value = value,
                MetricKind::Counter => return Ok(status::BAD_ARGUMENT),
            }
            Ok(status::OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_metric",
        |mut caller: Caller<'_, HostState>, id: u32, ret: u32| -> Result<i32> {
            let value = {
                let Ok(shared) = caller.data().shared.lock() else {
                    bail!("shared state poisoned");
                };
                match shared.metrics.get((id as usize).wrapping_sub(1)) {
                    Some(m) => m.value,
                    None => return Ok(status::NOT_FOUND),
                }
            };
            memory::write(&mut caller, ret, &(value as u64).to_le_bytes())?;
            Ok(status::OK)
        },
    )?;
    Ok(())
}
