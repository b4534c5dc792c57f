//! Fewer malloc arenas than glibc's default.
//!
//! glibc gives threads their own allocation arenas, up to eight per core. A request's memory is
//! often freed on another worker thread than the one that allocated it, and what one arena
//! frees the others cannot reuse, so under many concurrent requests each arena grows to its own
//! peak. With two arenas, 10,000 simultaneous streams peaked at 294 MB instead of 314 MB in
//! the streams benchmark, with no measurable change in CPU per request (docs/benchmarks.md).

/// Arenas ragd asks glibc for, unless the operator chose otherwise.
const ARENAS: i32 = 2;

/// Limits glibc's malloc arenas to [`ARENAS`], unless `MALLOC_ARENA_MAX` or `GLIBC_TUNABLES`
/// is set (the operator's choice stands). Must run before any thread is started: a thread
/// keeps the arena it first allocated from.
pub fn limit() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some()
        || std::env::var_os("GLIBC_TUNABLES").is_some()
    {
        return;
    }
    set_arena_max(ARENAS);
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(
    unsafe_code,
    reason = "mallopt is glibc's C interface; there is no safe wrapper"
)]
fn set_arena_max(arenas: i32) {
    // SAFETY: mallopt only records a setting of glibc's allocator; it takes plain integers and
    // is called before the program starts any other thread.
    let accepted = unsafe { libc::mallopt(libc::M_ARENA_MAX, arenas) };
    if accepted == 0 {
        eprintln!("ragd: glibc refused to limit malloc arenas; continuing with its default");
    }
}

/// Other C libraries (musl, macOS) have no arenas to limit.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_arena_max(_arenas: i32) {}
