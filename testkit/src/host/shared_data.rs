//! Shared key-value data and shared queues, across workers. Keys are
//! `zone/key`, or go to the `*` zone, which must exist or the call traps; a
//! CAS of 0 succeeds only while the key is absent; enqueueing to a full
//! queue traps; `resolve_shared_queue` is not implemented and traps (see
//! `nyi.rs`).

use wasmtime::{Caller, Linker, Result, bail};

use super::{HostState, memory, status};

fn check_zone(state: &HostState, key: &str) -> Result<()> {
    let Ok(shared) = state.shared.lock() else {
        bail!("shared state poisoned");
    };
    let zone = key.split_once('/').map(|(z, _)| z);
    let known = match zone {
        Some(z) => shared.zones.iter().any(|k| k == z) || shared.any_zone,
        None => shared.any_zone,
    };
    if !known {
        bail!("shared data key {key:?}: no such shm_kv zone (configure nginx_wasm_shm_kv)");
    }
    Ok(())
}

pub(crate) fn add(linker: &mut Linker<HostState>) -> Result<()> {
    linker.func_wrap(
        "env",
        "proxy_get_shared_data",
        |mut caller: Caller<'_, HostState>,
         key_ptr: u32,
         key_size: u32,
         ret_ptr: u32,
         ret_size: u32,
         ret_cas: u32|
         -> Result<i32> {
            let key = memory::read_str(&mut caller, key_ptr, key_size)?;
            check_zone(caller.data(), &key)?;
            let found = caller
                .data()
                .shared
                .lock()
                .ok()
                .and_then(|s| s.data.get(&key).cloned());
            match found {
                Some((value, cas)) => {
                    memory::give(&mut caller, &value, ret_ptr, ret_size)?;
                    memory::write_u32(&mut caller, ret_cas, cas)?;
                    Ok(status::OK)
                }
                None => Ok(status::NOT_FOUND),
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_shared_data",
        |mut caller: Caller<'_, HostState>,
         key_ptr: u32,
         key_size: u32,
         value_ptr: u32,
         value_size: u32,
         cas: u32|
         -> Result<i32> {
            let key = memory::read_str(&mut caller, key_ptr, key_size)?;
            let value = memory::read(&mut caller, value_ptr, value_size)?;
            check_zone(caller.data(), &key)?;
            let Ok(mut shared) = caller.data().shared.lock() else {
                bail!("shared state poisoned");
            };
            let current = shared.data.get(&key).map(|(_, c)| *c);
            let ok = match (current, cas) {
                (None, 0) => true,
                (Some(c), cas) => cas == c,
                (None, _) => false,
            };
            if !ok {
                return Ok(status::CAS_MISMATCH);
            }
            let next = current.unwrap_or(0).wrapping_add(1).max(1);
            shared.data.insert(key, (value, next));
            Ok(status::OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_register_shared_queue",
        |mut caller: Caller<'_, HostState>,
         name_ptr: u32,
         name_size: u32,
         ret_id: u32|
         -> Result<i32> {
            let name = memory::read_str(&mut caller, name_ptr, name_size)?;
            let id = {
                let Ok(mut shared) = caller.data().shared.lock() else {
                    bail!("shared state poisoned");
                };
                let next = u32::try_from(shared.queues.len())?.saturating_add(1);
                shared
                    .queues
                    .entry(name)
                    .or_insert_with(|| (next, Default::default()))
                    .0
            };
            memory::write_u32(&mut caller, ret_id, id)?;
            Ok(status::OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_enqueue_shared_queue",
        |mut caller: Caller<'_, HostState>, id: u32, ptr: u32, size: u32| -> Result<i32> {
            let value = memory::read(&mut caller, ptr, size)?;
            let Ok(mut shared) = caller.data().shared.lock() else {
                bail!("shared state poisoned");
            };
            let capacity = shared.queue_capacity;
            let Some((_, items)) = shared.queues.values_mut().find(|(qid, _)| *qid == id) else {
                return Ok(status::NOT_FOUND);
            };
            if items.len() >= capacity {
                bail!("enqueue_shared_queue: queue {id} is full");
            }
            items.push_back(value);
            Ok(status::OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_dequeue_shared_queue",
        |mut caller: Caller<'_, HostState>, id: u32, ret_ptr: u32, ret_size: u32| -> Result<i32> {
            let item = {
                let Ok(mut shared) = caller.data().shared.lock() else {
                    bail!("shared state poisoned");
                };
                match shared.queues.values_mut().find(|(qid, _)| *qid == id) {
                    Some((_, items)) => items.pop_front(),
                    None => return Ok(status::NOT_FOUND),
                }
            };
            match item {
                Some(value) => {
                    memory::give(&mut caller, &value, ret_ptr, ret_size)?;
                    Ok(status::OK)
                }
                None => Ok(7), // Empty
            }
        },
    )?;
    Ok(())
}
