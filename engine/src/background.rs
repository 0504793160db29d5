//! Background work yields the CPU to requests: sealing, indexing and index merges run at a
//! lower scheduling priority than the threads that answer requests, write the WAL and count
//! rollups, so on a small machine a seal or an index merge does not stall a request. Their
//! lag is bounded elsewhere: the memtable limit and the search lag limit push back on
//! ingest when they fall behind.
//!
//! On Linux a thread's nice value is its own and is inherited by the threads it creates;
//! elsewhere these are no-ops.

/// The nice value background threads run at (0 is normal, 19 the lowest).
pub const NICE: i32 = 10;

/// Lowers the calling thread's priority to [`NICE`] (never raises it). Best effort: a
/// failure only means the thread competes at normal priority.
pub fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid, getpriority and setpriority take no pointers; failures are returned.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        let now = libc::getpriority(libc::PRIO_PROCESS, tid);
        if now < NICE {
            let _ = libc::setpriority(libc::PRIO_PROCESS, tid, NICE);
        }
    }
}

/// Runs `f` on a short-lived thread at background priority and returns its result, so that
/// threads `f` creates (a library's worker pools) inherit the lower priority.
pub fn run_lowered<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| {
        s.spawn(|| {
            lower_priority();
            f()
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn nice_of_this_thread() -> i32 {
        // SAFETY: as above.
        unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::getpriority(libc::PRIO_PROCESS, tid)
        }
    }

    #[test]
    fn lowered_threads_and_their_children_run_at_background_priority() {
        let before = nice_of_this_thread();
        let (own, child) = run_lowered(|| {
            let own = nice_of_this_thread();
            let child = std::thread::spawn(nice_of_this_thread).join().unwrap();
            (own, child)
        });
        assert_eq!(own, NICE.max(before));
        assert_eq!(child, own, "a child inherits the priority");
        assert_eq!(nice_of_this_thread(), before, "the caller is unchanged");
    }
}
