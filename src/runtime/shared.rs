//! State shared by the master and all its workers, in one anonymous `MAP_SHARED`
//! page mapped before the first fork: today the connection counter, so that `*N` in
//! the error log names one connection across all workers, as nginx's
//! `ngx_connection_counter` (also in shared memory) does.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

static SHARED: OnceLock<&'static AtomicU64> = OnceLock::new();
/// Used when no shared page could be mapped (or before [`init`]): per process.
static LOCAL: AtomicU64 = AtomicU64::new(1);

/// Maps the shared page. Must run in the master before it forks; later calls do nothing.
pub fn init() {
    SHARED.get_or_init(|| {
        // SAFETY: a fresh anonymous mapping, never unmapped; it is zeroed and
        // page-aligned, so it holds a valid, aligned AtomicU64.
        unsafe {
            let page = libc::mmap(
                std::ptr::null_mut(),
                std::mem::size_of::<AtomicU64>(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            if page == libc::MAP_FAILED {
                return &LOCAL;
            }
            let counter = &*(page as *const AtomicU64);
            counter.store(1, Ordering::Relaxed);
            counter
        }
    });
}

/// The next connection number.
pub fn next_connection() -> u64 {
    SHARED
        .get()
        .copied()
        .unwrap_or(&LOCAL)
        .fetch_add(1, Ordering::Relaxed)
}
