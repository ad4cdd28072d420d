//! `ringcache-alloc`: the global allocator of both servers: mimalloc for blocks under [`MAPPED_ALLOC_BYTES`], and for larger
//! ones (the read buffer of a big request, a big value, a big reply) memory mapped from the kernel for that
//! block alone and unmapped when it is freed.
//!
//! Why: mimalloc keeps a freed large block's pages until a later allocation on the same thread purges
//! them, so after clients moved 10 MB values a shard held 224 MB of RSS with 57 MB in use (and never gave
//! it back once the traffic stopped). A block of its own is given back to the kernel the moment it is
//! freed, so RSS follows what is in use (issue 16: RSS within 1.5 × `--maxmemory` + 20 MB). Growing such a
//! block (a read buffer filling with a big value) is an `mremap`, which moves page tables rather than
//! copying bytes. Small blocks, the store's keys and values among them, stay with mimalloc, which packs
//! them tightly.
//!
//! Mapping every large block afresh costs page faults on each use (a 2 MB SET took 3 times the CPU of
//! mimalloc's reuse), so freed mapped blocks up to [`retained_limit_bytes`] in all (16 MiB unless
//! [`set_retained_limit_bytes`] says otherwise) are kept and resized with `mremap` for the next large
//! allocation: their pages are already resident. That much RSS can stay after the traffic stops.

#![allow(unsafe_code)] // see the note on `unsafe_code` in Cargo.toml

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;
use std::ptr;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;

use rustix::mm::{MapFlags, MremapFlags, ProtFlags};

/// Blocks of at least this many bytes get a mapping of their own. With 1 MiB here, a shard under 1 MB values
/// reached 114 MB of RSS for `--maxmemory 64mb` (77 MB at 256 KiB); the CPU per request was the same for
/// 0.3–2 MB values at both thresholds (with the cache of kept blocks; `docs/BENCHMARKS.md`).
pub const MAPPED_ALLOC_BYTES: usize = 256 << 10;

/// Mappings are aligned to the page size, at least this on every Linux target.
const MIN_PAGE_BYTES: usize = 4096;

/// mimalloc, with large blocks mapped on their own (see the module's documentation).
pub struct ServerAllocator;

#[inline]
fn is_mapped(size: usize, align: usize) -> bool {
    size >= MAPPED_ALLOC_BYTES && align <= MIN_PAGE_BYTES
}

/// Freed mapped blocks kept for reuse, at most this many.
const RETAINED_BLOCKS: usize = 16;

static RETAINED_LIMIT_BYTES: AtomicUsize = AtomicUsize::new(16 << 20);

/// Freed mapped blocks, as (address, length): owned by nobody but this cache.
struct Retained {
    blocks: [(usize, usize); RETAINED_BLOCKS],
    count: usize,
    bytes: usize,
}

static RETAINED: Mutex<Retained> = Mutex::new(Retained { blocks: [(0, 0); RETAINED_BLOCKS], count: 0, bytes: 0 });

/// How many bytes of freed large blocks are kept for reuse.
pub fn retained_limit_bytes() -> usize {
    RETAINED_LIMIT_BYTES.load(Relaxed)
}

/// Sets [`retained_limit_bytes`] (a shard keeps no more than a quarter of `--maxmemory`); blocks already
/// kept beyond a lower limit are given back as they are reused.
pub fn set_retained_limit_bytes(bytes: usize) {
    RETAINED_LIMIT_BYTES.store(bytes, Relaxed);
}

fn page_round(size: usize) -> usize {
    size.div_ceil(MIN_PAGE_BYTES) * MIN_PAGE_BYTES
}

fn retained() -> std::sync::MutexGuard<'static, Retained> {
    // Nothing panics while holding it; a poisoned lock's data is still consistent.
    RETAINED.lock().unwrap_or_else(|e| e.into_inner())
}

/// A block of `size` bytes for `alloc`: a kept one resized to fit (the closest in size, so the fewest pages
/// are mapped or unmapped), or a fresh mapping.
fn take(size: usize) -> *mut u8 {
    let want = page_round(size);
    let kept = {
        let mut r = retained();
        let count = r.count;
        let best = (0..count).min_by_key(|&i| r.blocks[i].1.abs_diff(want));
        best.map(|i| {
            let block = r.blocks[i];
            r.blocks[i] = r.blocks[count - 1];
            r.count -= 1;
            r.bytes -= block.1;
            block
        })
    };
    let Some((addr, len)) = kept else { return map(size) };
    if len == want {
        return addr as *mut u8;
    }
    // SAFETY: (addr, len) is a mapping this cache owned, now ours; MAYMOVE lets the kernel move it.
    match unsafe { rustix::mm::mremap(addr as *mut c_void, len, want, MremapFlags::MAYMOVE) } {
        Ok(p) => p.cast(),
        Err(_) => {
            // SAFETY: the mapping is still ours and unused.
            unsafe { unmap(addr as *mut u8, len) };
            map(size)
        }
    }
}

/// # Safety
/// `ptr` is a mapping of `size` bytes (rounded up to pages) that nothing uses any more.
unsafe fn give_back(ptr: *mut u8, size: usize) {
    let len = page_round(size);
    {
        let mut r = retained();
        let count = r.count;
        if count < RETAINED_BLOCKS && r.bytes + len <= retained_limit_bytes() {
            r.blocks[count] = (ptr as usize, len);
            r.count += 1;
            r.bytes += len;
            return;
        }
    }
    // SAFETY: per this function's contract.
    unsafe { unmap(ptr, len) }
}

/// A fresh anonymous mapping of `size` bytes (zeroed by the kernel), or null.
fn map(size: usize) -> *mut u8 {
    // SAFETY: a new private anonymous mapping at an address the kernel chooses touches no existing memory.
    match unsafe {
        rustix::mm::mmap_anonymous(ptr::null_mut(), size, ProtFlags::READ | ProtFlags::WRITE, MapFlags::PRIVATE)
    } {
        Ok(p) => p.cast(),
        Err(_) => ptr::null_mut(),
    }
}

/// # Safety
/// `ptr` and `size` are a mapping made by [`map`] (or moved by `mremap`) that nothing uses any more.
unsafe fn unmap(ptr: *mut u8, size: usize) {
    // SAFETY: per this function's contract. munmap only fails for arguments that are not a mapping.
    let _ = unsafe { rustix::mm::munmap(ptr.cast::<c_void>(), size) };
}

// SAFETY: every block is either mimalloc's (sizes under the threshold or alignments over a page: decided by
// the layout alone, which the caller passes back unchanged to `dealloc` and `realloc`) or a mapping of its
// own of at least `layout.size()` bytes, page-aligned, so aligned for any `align <= MIN_PAGE_BYTES`.
unsafe impl GlobalAlloc for ServerAllocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_mapped(layout.size(), layout.align()) {
            take(layout.size())
        } else {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { mimalloc::MiMalloc.alloc(layout) }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_mapped(layout.size(), layout.align()) {
            map(layout.size()) // a fresh mapping starts zeroed (a kept one would not)
        } else {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_mapped(layout.size(), layout.align()) {
            // SAFETY: a block of this layout was mapped by `alloc` or `realloc`, and the caller frees it.
            unsafe { give_back(ptr, layout.size()) }
        } else {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old_mapped = is_mapped(layout.size(), layout.align());
        let new_mapped = is_mapped(new_size, layout.align());
        match (old_mapped, new_mapped) {
            // SAFETY: forwarded with the caller's guarantees; the block stays mimalloc's.
            (false, false) => unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) },
            (true, true) => {
                // SAFETY: `ptr` is a mapping of `layout.size()` bytes (this impl's invariant); MAYMOVE lets the
                // kernel move it, and the caller uses only the returned pointer from now on.
                match unsafe { rustix::mm::mremap(ptr.cast::<c_void>(), layout.size(), new_size, MremapFlags::MAYMOVE) }
                {
                    Ok(p) => p.cast(),
                    Err(_) => ptr::null_mut(), // the old block is left as it was, as `realloc` requires
                }
            }
            _ => {
                // Crossing the threshold: a new block of the other kind, the bytes copied, the old one freed.
                // SAFETY: `new_size` is non-zero and, rounded to `align`, fits in isize (the caller's contract).
                let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
                // SAFETY: a valid layout of non-zero size.
                let new_ptr = unsafe { self.alloc(new_layout) };
                if !new_ptr.is_null() {
                    // SAFETY: both blocks hold at least the copied length and are distinct allocations.
                    unsafe {
                        ptr::copy_nonoverlapping(ptr, new_ptr, layout.size().min(new_size));
                        self.dealloc(ptr, layout);
                    }
                }
                new_ptr
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The tests share the process's cache of kept blocks: one at a time.
    static SERIAL: Mutex<()> = Mutex::new(());

    #[test]
    fn blocks_on_both_sides_of_the_threshold_keep_their_bytes_through_growth_and_shrinking() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let a = ServerAllocator;
        let align = 8;
        // Small -> small -> mapped -> mapped (mremap) -> small, checking the first bytes survive each move.
        let sizes = [100, 1000, MAPPED_ALLOC_BYTES + 10, 4 * MAPPED_ALLOC_BYTES + 3, 500];
        unsafe {
            let mut layout = Layout::from_size_align(sizes[0], align).unwrap();
            let mut p = a.alloc(layout);
            assert!(!p.is_null());
            for i in 0..sizes[0] {
                *p.add(i) = (i % 251) as u8;
            }
            for &size in &sizes[1..] {
                p = a.realloc(p, layout, size);
                assert!(!p.is_null(), "realloc to {size}");
                assert_eq!(p as usize % align, 0);
                for i in 0..sizes[0].min(size) {
                    assert_eq!(*p.add(i), (i % 251) as u8, "byte {i} after realloc to {size}");
                }
                // The whole new block is writable.
                *p.add(size - 1) = 7;
                layout = Layout::from_size_align(size, align).unwrap();
            }
            a.dealloc(p, layout);
        }
    }

    #[test]
    fn freed_large_blocks_are_kept_up_to_the_limit_and_reused_at_any_size() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let a = ServerAllocator;
        unsafe {
            let l1 = Layout::from_size_align(3 * MAPPED_ALLOC_BYTES, 8).unwrap();
            let p = a.alloc(l1);
            *p.add(l1.size() - 1) = 1;
            a.dealloc(p, l1);
            assert!(retained().bytes >= l1.size(), "a freed block within the limit is kept");
            // Reused for a block of another size: resized, fully writable, and taken out of the cache.
            let l2 = Layout::from_size_align(5 * MAPPED_ALLOC_BYTES + 1, 8).unwrap();
            let q = a.alloc(l2);
            assert!(!q.is_null());
            *q.add(l2.size() - 1) = 2;
            *q = 3;
            a.dealloc(q, l2);
            // A block larger than the limit is given back to the kernel, not kept.
            let before = retained().bytes;
            let huge = Layout::from_size_align(retained_limit_bytes() + MAPPED_ALLOC_BYTES, 8).unwrap();
            let h = a.alloc(huge);
            *h.add(huge.size() - 1) = 4;
            a.dealloc(h, huge);
            assert!(retained().bytes <= retained_limit_bytes());
            assert!(retained().bytes <= before.max(huge.size()));
        }
    }

    #[test]
    fn a_mapped_zeroed_block_reads_zero_and_page_aligned_requests_are_honoured() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let a = ServerAllocator;
        unsafe {
            let layout = Layout::from_size_align(2 * MAPPED_ALLOC_BYTES, 4096).unwrap();
            let p = a.alloc_zeroed(layout);
            assert!(!p.is_null());
            assert_eq!(p as usize % 4096, 0);
            assert!((0..layout.size()).step_by(997).all(|i| *p.add(i) == 0));
            a.dealloc(p, layout);
            // An alignment above a page stays with mimalloc, which honours it.
            let big_align = Layout::from_size_align(2 * MAPPED_ALLOC_BYTES, 1 << 16).unwrap();
            let q = a.alloc(big_align);
            assert!(!q.is_null());
            assert_eq!(q as usize % (1 << 16), 0);
            a.dealloc(q, big_align);
        }
    }
}
