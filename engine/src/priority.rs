//! Sealing yields the CPU to requests: the flusher thread, which compresses and writes
//! segments in bursts, runs at a lower scheduling priority than the threads that answer
//! requests, write the WAL, count rollups and index, so on a small machine a seal does not
//! stall a request. Its lag is bounded elsewhere: the memtable limit pushes back on ingest
//! when sealing falls behind.
//!
//! Indexing stays at normal priority: lowered, it fell behind appends and the index-lag
//! limit cut ingest-until-searchable by a fifth (BENCHMARKS.md, "HTTP ingest", what was
//! tried). Instead, the threads that answer requests and commit the WAL take short
//! scheduler slices ([`shorten_slice`]): the same share of the CPU, but a core soon after
//! they wake, so indexing at full speed after a flood delays a request far less.
//!
//! On Linux a thread's nice value and slice are its own; elsewhere this is a no-op.

/// The nice value background threads run at (0 is normal, 19 the lowest).
pub const NICE: i32 = 10;

/// The scheduler time slice of the threads that answer requests and commit the WAL
/// ([`shorten_slice`]), in nanoseconds: 0.2 ms, where Linux's default is a few times that.
pub const SHORT_SLICE_NS: u64 = 200_000;

/// Asks the scheduler for short time slices for the calling thread ([`SHORT_SLICE_NS`]),
/// keeping its policy and nice value, so its share of the CPU is unchanged. Since Linux 6.12
/// the fair scheduler (EEVDF) gives a waking thread with a shorter slice an earlier deadline
/// and lets it preempt a thread running a longer one: a request that arrives while indexing
/// and sealing catch up after a flood waits for a core for a fraction of a millisecond
/// instead of the rest of the indexer's slice. For request and WAL threads, which run in
/// short bursts. Threads the caller starts later do not inherit the short slice (they start
/// with the default: `SCHED_FLAG_RESET_ON_FORK`), so the engine's background threads keep
/// theirs. Best effort: an older kernel ignores the slice (or refuses the call), and
/// elsewhere this is a no-op; returns whether the kernel took it.
pub fn shorten_slice() -> bool {
    #[cfg(target_os = "linux")]
    {
        /// `struct sched_attr` (`SCHED_ATTR_SIZE_VER1`).
        #[repr(C)]
        struct SchedAttr {
            size: u32,
            policy: u32,
            flags: u64,
            nice: i32,
            priority: u32,
            runtime: u64,
            deadline: u64,
            period: u64,
            util_min: u32,
            util_max: u32,
        }
        /// Threads started by this one begin with the default policy, nice and slice.
        const SCHED_FLAG_RESET_ON_FORK: u64 = 0x01;
        // SAFETY: gettid and getpriority take no pointers; sched_setattr reads `attr`, a
        // live, initialised `sched_attr` whose `size` field is its own size.
        unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            if libc::sched_getscheduler(0) != libc::SCHED_OTHER {
                return false;
            }
            let attr = SchedAttr {
                size: std::mem::size_of::<SchedAttr>() as u32,
                policy: libc::SCHED_OTHER as u32,
                flags: SCHED_FLAG_RESET_ON_FORK,
                nice: libc::getpriority(libc::PRIO_PROCESS, tid),
                priority: 0,
                runtime: SHORT_SLICE_NS,
                deadline: 0,
                period: 0,
                util_min: 0,
                util_max: 0,
            };
            libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0) == 0
        }
    }
    #[cfg(not(target_os = "linux"))]
    false
}

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

/// Puts the calling thread's disk reads and writes in the idle I/O class: the block
/// layer's scheduler (mq-deadline, BFQ) serves them when no other thread's I/O waits, so a
/// bulk rewrite does not queue ahead of the WAL's `fdatasync`. For work that writes in bulk
/// and can wait (a deletion's rewrite, index merges); the scheduler ages idle requests, so
/// they are delayed, not starved. Best effort: with no I/O scheduler ("none") or on other
/// systems it changes nothing.
pub fn lower_io_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid takes no pointers; failures are returned.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::c_long;
        set_idle_io(tid);
    }
}

#[cfg(target_os = "linux")]
/// `ioprio_set(IOPRIO_WHO_PROCESS, tid, IOPRIO_PRIO_VALUE(IOPRIO_CLASS_IDLE, 0))`.
///
/// # Safety
/// Takes no pointers; a failure is returned by the system call and ignored.
unsafe fn set_idle_io(tid: libc::c_long) -> bool {
    const IOPRIO_WHO_PROCESS: libc::c_long = 1;
    const IOPRIO_CLASS_IDLE: libc::c_long = 3;
    const IOPRIO_CLASS_SHIFT: libc::c_long = 13;
    let prio = IOPRIO_CLASS_IDLE << IOPRIO_CLASS_SHIFT;
    // SAFETY: per this function's contract.
    unsafe { libc::syscall(libc::SYS_ioprio_set, IOPRIO_WHO_PROCESS, tid, prio) == 0 }
}

/// Lowers to [`NICE`] every thread of this process whose name starts with `prefix`, and
/// returns how many it lowered. For threads a library starts (tantivy's `merge_thread_N`,
/// which rewrite index segments in bursts: a deletion's purge rewrites them all), which
/// cannot call [`lower_priority`] themselves; with `io`, their I/O goes in the idle class
/// too ([`lower_io_priority`]). Best effort, as above.
pub fn lower_threads_named(prefix: &str, io: bool) -> usize {
    #[cfg(target_os = "linux")]
    {
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return 0;
        };
        let mut lowered = 0;
        for task in tasks.flatten() {
            let named = std::fs::read_to_string(task.path().join("comm"))
                .is_ok_and(|comm| comm.trim_end().starts_with(prefix));
            let tid = task.file_name().to_str().and_then(|t| t.parse().ok());
            if let (true, Some(tid)) = (named, tid) {
                // SAFETY: getpriority and setpriority take no pointers; failures are returned.
                unsafe {
                    if libc::getpriority(libc::PRIO_PROCESS, tid) < NICE
                        && libc::setpriority(libc::PRIO_PROCESS, tid, NICE) == 0
                    {
                        lowered += 1;
                    }
                    if io {
                        set_idle_io(tid as libc::c_long);
                    }
                }
            }
        }
        lowered
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (prefix, io);
        0
    }
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
    fn a_lowered_thread_runs_at_background_priority_and_others_do_not() {
        let before = nice_of_this_thread();
        let own = std::thread::spawn(|| {
            lower_priority();
            nice_of_this_thread()
        })
        .join()
        .unwrap();
        assert_eq!(own, NICE.max(before));
        assert_eq!(nice_of_this_thread(), before, "the caller is unchanged");
    }

    const IDLE_CLASS: i64 = 3;

    /// `ioprio_get(IOPRIO_WHO_PROCESS, tid)`'s class.
    fn io_class_of_this_thread() -> i64 {
        // SAFETY: takes no pointers.
        unsafe {
            let tid = libc::syscall(libc::SYS_gettid);
            let p = libc::syscall(libc::SYS_ioprio_get, 1 as libc::c_long, tid);
            assert!(p >= 0, "ioprio_get failed");
            p >> 13
        }
    }

    #[test]
    fn a_thread_with_lowered_io_is_in_the_idle_class_and_others_are_not() {
        let own = std::thread::spawn(|| {
            lower_io_priority();
            io_class_of_this_thread()
        })
        .join()
        .unwrap();
        assert_eq!(own, IDLE_CLASS);
        assert_ne!(io_class_of_this_thread(), IDLE_CLASS);
    }

    /// The calling thread's scheduler slice (ns), where the kernel shows it (Linux 6.6+).
    fn slice_of_this_thread() -> Option<u64> {
        let sched = std::fs::read_to_string("/proc/thread-self/sched").ok()?;
        let line = sched.lines().find(|l| l.starts_with("se.slice"))?;
        line.rsplit(':').next()?.trim().parse().ok()
    }

    /// Whether the kernel takes a fair thread's slice from `sched_setattr` (Linux 6.12+).
    fn kernel_takes_slices() -> bool {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let mut v = release
            .split(|c: char| !c.is_ascii_digit())
            .map(|n| n.parse().unwrap_or(0));
        let (major, minor): (u32, u32) = (v.next().unwrap_or(0), v.next().unwrap_or(0));
        (major, minor) >= (6, 12)
    }

    #[test]
    fn a_shortened_thread_has_the_short_slice_and_its_children_the_default() {
        let before = slice_of_this_thread();
        let Some(before) = before.filter(|_| kernel_takes_slices()) else {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI: this kernel (before 6.12) has no per-thread slices: the short slice is untested"
            );
            eprintln!("skipped: this kernel (before 6.12) has no per-thread slices");
            return;
        };
        let (took, own, child) = std::thread::spawn(|| {
            let took = shorten_slice();
            let own = slice_of_this_thread();
            let child = std::thread::spawn(slice_of_this_thread).join().unwrap();
            (took, own, child)
        })
        .join()
        .unwrap();
        assert!(took, "the kernel refused sched_setattr");
        assert_eq!(own, Some(SHORT_SLICE_NS));
        assert_eq!(
            child,
            Some(before),
            "threads it starts get the default slice"
        );
        assert_eq!(
            slice_of_this_thread(),
            Some(before),
            "the caller is unchanged"
        );
    }

    #[test]
    fn threads_are_lowered_by_name() {
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let (tell, told) = std::sync::mpsc::channel();
        let (started, running) = std::sync::mpsc::channel();
        let t = std::thread::Builder::new()
            .name("prio_test_named".into())
            .spawn(move || {
                // The new thread names itself as it starts: only then can it be found.
                started.send(()).unwrap();
                wait.recv().unwrap();
                tell.send((nice_of_this_thread(), io_class_of_this_thread()))
                    .unwrap();
            })
            .unwrap();
        running.recv().unwrap();
        let before = nice_of_this_thread();
        assert!(lower_threads_named("prio_test_named", true) >= usize::from(before < NICE));
        go.send(()).unwrap();
        let (nice, io) = told.recv().unwrap();
        assert_eq!(nice, NICE.max(before));
        assert_eq!(
            io, IDLE_CLASS,
            "the named thread's I/O is in the idle class"
        );
        assert_ne!(
            io_class_of_this_thread(),
            IDLE_CLASS,
            "other threads keep theirs"
        );
        assert_eq!(nice_of_this_thread(), before, "other threads are unchanged");
        t.join().unwrap();
    }
}
