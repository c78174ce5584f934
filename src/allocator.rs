//! The filter's allocator front: freed small blocks kept in size classes
//! and handed out again, in front of a general allocator (talc in the
//! filter). Every property Kong answers is a buffer the guest allocates
//! for it through `proxy_on_memory_allocate` and frees in the same log
//! phase, eight or more a request, and each allocation and free cost talc
//! 80 to 90 Wasm instructions; from a class's free list it is a dozen.
//!
//! A class keeps at most [`CLASS_BYTES`] of free blocks and gives the rest
//! back, so what the cache holds is bounded (64 classes, 512 KiB at most)
//! whatever the traffic. Blocks come from the inner allocator at their
//! class's size and [`GRAIN`] alignment, and go back to it the same way.
//!
//! Single-threaded: Kong runs one Wasm instance per worker, and wasm32
//! without the atomics feature has one thread. Natively it is built only
//! for its tests, each instance on one thread.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::ptr::null_mut;

/// Size step between classes, and the alignment of every cached block.
pub const GRAIN: usize = 16;
/// Largest request served from a class; larger ones go to the inner
/// allocator as they are.
pub const MAX_CACHED: usize = 1024;
/// Free bytes a class may keep.
pub const CLASS_BYTES: usize = 8 * 1024;
const CLASSES: usize = MAX_CACHED / GRAIN;

/// Small freed blocks in classes, in front of `A`.
pub struct Cached<A> {
    inner: A,
    /// Each class's free list, linked through the blocks' first word.
    heads: [Cell<*mut u8>; CLASSES],
    /// Bytes on each free list.
    held: [Cell<usize>; CLASSES],
}

// SAFETY: only where there is one thread (see the module doc).
#[cfg(all(target_family = "wasm", not(target_feature = "atomics")))]
unsafe impl<A: Sync> Sync for Cached<A> {}

impl<A> Cached<A> {
    /// A cache in front of `inner`, empty.
    pub const fn new(inner: A) -> Self {
        Cached {
            inner,
            heads: [const { Cell::new(null_mut()) }; CLASSES],
            held: [const { Cell::new(0) }; CLASSES],
        }
    }
}

/// The class of a layout, if it is served from one.
#[inline(always)]
fn class(layout: Layout) -> Option<usize> {
    if layout.size() > MAX_CACHED || layout.align() > GRAIN || layout.size() == 0 {
        return None;
    }
    Some(layout.size().wrapping_sub(1) / GRAIN)
}

/// The size of a class's blocks.
#[inline(always)]
fn size(class: usize) -> usize {
    class.wrapping_add(1).wrapping_mul(GRAIN)
}

/// The layout a class's blocks have in the inner allocator.
#[inline(always)]
fn block(class: usize) -> Layout {
    // Never fails: at most MAX_CACHED bytes, aligned to a power of two.
    Layout::from_size_align(size(class), GRAIN).unwrap_or(Layout::new::<u8>())
}

// SAFETY: a cached block is one the inner allocator gave out at its class's
// layout and the caller freed; it is handed out once and given back to the
// inner allocator at that same layout.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Cached<A> {
    // Out of line: inlined at every allocation site, the fast paths grew
    // the filter by 14 KB.
    #[inline(never)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(c) = class(layout) else {
            // SAFETY: the caller's layout, passed on.
            return unsafe { self.inner.alloc(layout) };
        };
        if let (Some(head), Some(held)) = (self.heads.get(c), self.held.get(c)) {
            let block = head.get();
            if !block.is_null() {
                // SAFETY: a free block of this class holds the next one's
                // address in its first word (GRAIN-aligned, GRAIN bytes).
                head.set(unsafe { block.cast::<*mut u8>().read() });
                held.set(held.get().saturating_sub(size(c)));
                return block;
            }
        }
        // SAFETY: a non-zero size.
        unsafe { self.inner.alloc(block(c)) }
    }

    #[inline(never)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let Some(c) = class(layout) else {
            // SAFETY: allocated by the inner allocator at this layout.
            return unsafe { self.inner.dealloc(ptr, layout) };
        };
        if let (Some(head), Some(held)) = (self.heads.get(c), self.held.get(c)) {
            let more = held.get().saturating_add(size(c));
            if more <= CLASS_BYTES {
                // SAFETY: the block is ours again, at least GRAIN bytes and
                // GRAIN-aligned.
                unsafe { ptr.cast::<*mut u8>().write(head.get()) };
                head.set(ptr);
                held.set(more);
                return;
            }
        }
        // SAFETY: allocated by the inner allocator at the class's layout.
        unsafe { self.inner.dealloc(ptr, block(c)) }
    }

    #[inline(never)]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY (all arms): the caller's contract for `realloc`.
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return null_mut();
        };
        match (class(layout), class(new_layout)) {
            (Some(a), Some(b)) if a == b => ptr,
            (None, None) => unsafe { self.inner.realloc(ptr, layout, new_size) },
            _ => unsafe {
                let new = self.alloc(new_layout);
                if !new.is_null() {
                    std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                    self.dealloc(ptr, layout);
                }
                new
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::System;
    use std::cell::RefCell;
    use std::collections::HashMap;

    /// System's allocator, checking that every block is freed at the
    /// layout it was allocated with, and counting what it serves.
    #[derive(Default)]
    struct Checked {
        live: RefCell<HashMap<usize, Layout>>,
        allocs: Cell<usize>,
        frees: Cell<usize>,
    }

    unsafe impl GlobalAlloc for Checked {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let p = unsafe { System.alloc(layout) };
            self.allocs.set(self.allocs.get() + 1);
            assert!(self.live.borrow_mut().insert(p as usize, layout).is_none());
            p
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            let was = self.live.borrow_mut().remove(&(ptr as usize));
            assert_eq!(was, Some(layout), "freed at another layout");
            self.frees.set(self.frees.get() + 1);
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn a_freed_small_block_is_handed_out_again_without_the_inner_allocator() {
        let a = Cached::new(Checked::default());
        unsafe {
            let p = a.alloc(layout(20, 1));
            a.dealloc(p, layout(20, 1));
            // 17 to 32 bytes are one class.
            let q = a.alloc(layout(32, 8));
            assert_eq!(p, q);
            assert_eq!(a.inner.allocs.get(), 1);
            assert_eq!(p as usize % GRAIN, 0);
            // Another class is another block.
            let r = a.alloc(layout(33, 1));
            assert_ne!(r, q);
            assert_eq!(a.inner.allocs.get(), 2);
            a.dealloc(q, layout(32, 8));
            a.dealloc(r, layout(33, 1));
        }
        assert_eq!(a.inner.frees.get(), 0, "kept, not given back");
    }

    #[test]
    fn large_over_aligned_and_past_the_cap_go_to_the_inner_allocator() {
        let a = Cached::new(Checked::default());
        unsafe {
            for l in [layout(MAX_CACHED + 1, 1), layout(64, 32)] {
                let p = a.alloc(l);
                a.dealloc(p, l);
                let q = a.alloc(l);
                a.dealloc(q, l);
            }
            assert_eq!(a.inner.allocs.get(), 4);
            assert_eq!(a.inner.frees.get(), 4);

            // The 1,024-byte class keeps 8 blocks; the 9th goes back.
            let l = layout(MAX_CACHED, 1);
            let keep = CLASS_BYTES / MAX_CACHED;
            let blocks: Vec<_> = (0..keep + 1).map(|_| a.alloc(l)).collect();
            for p in blocks {
                a.dealloc(p, l);
            }
            assert_eq!(a.inner.frees.get(), 5);
            assert_eq!(a.held[CLASSES - 1].get(), CLASS_BYTES);
        }
    }

    #[test]
    fn realloc_keeps_the_bytes_within_and_across_classes() {
        let a = Cached::new(Checked::default());
        unsafe {
            let mut size = 5;
            let mut p = a.alloc(layout(size, 1));
            std::ptr::write_bytes(p, 0xab, size);
            // Within the first class: the same block.
            let q = a.realloc(p, layout(size, 1), 16);
            assert_eq!(q, p);
            size = 16;
            std::ptr::write_bytes(p.add(5), 0xab, 11);
            // Up through the classes and past them, and back down.
            for new_size in [40, 500, 513, 4000, 300, 7] {
                p = a.realloc(p, layout(size, 1), new_size);
                let kept = size.min(new_size);
                let bytes = std::slice::from_raw_parts(p, kept);
                assert!(bytes.iter().all(|&b| b == 0xab), "at {size} -> {new_size}");
                std::ptr::write_bytes(p, 0xab, new_size);
                size = new_size;
            }
            a.dealloc(p, layout(size, 1));
        }
    }

    #[test]
    fn many_blocks_live_at_once_never_overlap_and_free_at_their_layout() {
        let a = Cached::new(Checked::default());
        let mut live: Vec<(*mut u8, Layout, u8)> = Vec::new();
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        unsafe {
            for step in 0..20_000u32 {
                let r = next();
                if live.len() < 300 && r % 3 != 0 {
                    let size = 1 + (r >> 8) as usize % 1500;
                    let align = 1 << ((r >> 20) % 6);
                    let l = layout(size, align);
                    let p = a.alloc(l);
                    assert_eq!(p as usize % align, 0);
                    let tag = step as u8;
                    std::ptr::write_bytes(p, tag, size);
                    live.push((p, l, tag));
                } else if !live.is_empty() {
                    let (p, l, tag) = live.swap_remove((r >> 8) as usize % live.len());
                    let bytes = std::slice::from_raw_parts(p, l.size());
                    assert!(bytes.iter().all(|&b| b == tag), "a block was overwritten");
                    a.dealloc(p, l);
                }
            }
            for (p, l, _) in live {
                a.dealloc(p, l);
            }
        }
        let held: usize = a.held.iter().map(Cell::get).sum();
        let live = a.inner.live.borrow();
        assert_eq!(
            live.values().map(|l| l.size()).sum::<usize>(),
            held,
            "only the kept blocks"
        );
        assert!(held <= CLASSES * CLASS_BYTES);
    }
}
