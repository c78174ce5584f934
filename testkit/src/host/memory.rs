//! Checked access to the guest's linear memory. Every host function reads
//! and writes guest memory through these helpers, so a bad pointer from the
//! filter becomes a trap with a message, never a host panic.

use wasmtime::{AsContextMut, Caller, Extern, Instance, Memory, Result, TypedFunc, bail};

use super::HostState;

/// An instance's memory and its allocator for the host's answers.
#[derive(Clone)]
pub(crate) struct Guest {
    memory: Option<Memory>,
    alloc: Option<TypedFunc<u32, u32>>,
}

impl Guest {
    /// Looks both up in a fresh instance. Like ngx_wasm_module, an exported
    /// `malloc` is the allocator before `proxy_on_memory_allocate`.
    pub(crate) fn of(mut store: impl AsContextMut, instance: &Instance) -> Guest {
        Guest {
            memory: instance.get_memory(&mut store, "memory"),
            alloc: instance
                .get_typed_func::<u32, u32>(&mut store, "malloc")
                .or_else(|_| {
                    instance.get_typed_func::<u32, u32>(&mut store, "proxy_on_memory_allocate")
                })
                .ok(),
        }
    }
}

fn memory(caller: &mut Caller<'_, HostState>) -> Result<Memory> {
    if let Some(m) = caller.data().guest.as_ref().and_then(|g| g.memory) {
        return Ok(m);
    }
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => Ok(m),
        _ => bail!("the module exports no memory"),
    }
}

/// Copies `len` bytes at `ptr` out of the guest.
pub(crate) fn read(caller: &mut Caller<'_, HostState>, ptr: u32, len: u32) -> Result<Vec<u8>> {
    let mem = memory(caller)?;
    let start = ptr as usize;
    let end = start.checked_add(len as usize);
    match end.and_then(|end| mem.data(&caller).get(start..end)) {
        Some(bytes) => Ok(bytes.to_vec()),
        None => bail!("guest pointer {ptr:#x}+{len} is out of bounds"),
    }
}

/// Reads a UTF-8 string from the guest.
pub(crate) fn read_str(caller: &mut Caller<'_, HostState>, ptr: u32, len: u32) -> Result<String> {
    match String::from_utf8(read(caller, ptr, len)?) {
        Ok(s) => Ok(s),
        Err(_) => bail!("guest string at {ptr:#x} is not UTF-8"),
    }
}

/// Writes bytes at `ptr` in the guest.
pub(crate) fn write(caller: &mut Caller<'_, HostState>, ptr: u32, bytes: &[u8]) -> Result<()> {
    let mem = memory(caller)?;
    let start = ptr as usize;
    let end = start.checked_add(bytes.len());
    match end.and_then(|end| mem.data_mut(&mut *caller).get_mut(start..end)) {
        Some(dst) => {
            dst.copy_from_slice(bytes);
            Ok(())
        }
        None => bail!("guest pointer {ptr:#x}+{} is out of bounds", bytes.len()),
    }
}

/// Writes a little-endian u32 (a wasm32 `usize` or pointer) at `ptr`.
pub(crate) fn write_u32(caller: &mut Caller<'_, HostState>, ptr: u32, value: u32) -> Result<()> {
    write(caller, ptr, &value.to_le_bytes())
}

/// Hands bytes to the guest the proxy-wasm way: allocates with the guest's
/// `proxy_on_memory_allocate`, copies the bytes in, and stores the pointer
/// and size at `ret_ptr` and `ret_size`.
pub(crate) fn give(
    caller: &mut Caller<'_, HostState>,
    bytes: &[u8],
    ret_ptr: u32,
    ret_size: u32,
) -> Result<()> {
    let alloc = match caller.data().guest.as_ref().and_then(|g| g.alloc.clone()) {
        Some(alloc) => alloc,
        None => {
            let Some(alloc) = caller
                .get_export("proxy_on_memory_allocate")
                .and_then(Extern::into_func)
            else {
                bail!("the module exports no proxy_on_memory_allocate");
            };
            alloc.typed::<u32, u32>(&mut *caller)?
        }
    };
    let len = u32::try_from(bytes.len())?;
    let ptr = alloc.call(&mut *caller, len)?;
    if ptr == 0 && len != 0 {
        bail!("proxy_on_memory_allocate({len}) returned null");
    }
    write(caller, ptr, bytes)?;
    write_u32(caller, ret_ptr, ptr)?;
    write_u32(caller, ret_size, len)
}

/// Serializes a header map the proxy-wasm way: count, then (key length,
/// value length) pairs, then each key and value followed by a NUL.
pub(crate) fn serialize_map(map: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(map.len() as u32).to_le_bytes());
    for (k, v) in map {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in map {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out
}

/// Parses a serialized header map; `None` when it is malformed.
pub(crate) fn deserialize_map(bytes: &[u8]) -> Option<Vec<(String, String)>> {
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let count = u32::from_le_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    let mut sizes = bytes
        .get(4..4usize.checked_add(count.checked_mul(8)?)?)?
        .chunks_exact(8);
    let mut rest = bytes.get(4 + count * 8..)?;
    let mut map = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let pair = sizes.next()?;
        let klen = u32::from_le_bytes(pair.get(..4)?.try_into().ok()?) as usize;
        let vlen = u32::from_le_bytes(pair.get(4..)?.try_into().ok()?) as usize;
        let key = rest.get(..klen)?;
        rest = rest.get(klen.checked_add(1)?..)?;
        let value = rest.get(..vlen)?;
        rest = rest.get(vlen.checked_add(1)?..)?;
        map.push((
            String::from_utf8(key.to_vec()).ok()?,
            String::from_utf8(value.to_vec()).ok()?,
        ));
    }
    Some(map)
}
