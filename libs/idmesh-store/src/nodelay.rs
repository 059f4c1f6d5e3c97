//! `TCP_NODELAY` for the PostgreSQL connections sqlx opens.
//!
//! sqlx 0.9.0 no longer sets it on its sockets (transact-rs/sqlx#4335,
//! fixed upstream by #4336 but not in a release this workspace can use).
//! Without it the kernel holds back the second piece of a message until the
//! server acknowledges the first, and the server delays that
//! acknowledgement by up to 40 ms while it waits for the rest of the
//! message. Over TLS (`sslmode=prefer`, sqlx's default, against a server
//! with TLS on) each 16 KiB record is written on its own, so every
//! statement that binds more than 16 KiB waited 40 ms besides its work: a
//! user's rewrite once the document passes about 8 KiB (it is bound twice,
//! as stored and folded). docs/benchmarks.md has the measurement.
//!
//! sqlx gives no access to its socket. So after each new PostgreSQL
//! connection, every TCP socket of this process that runs without
//! `TCP_NODELAY` gets it: the ones sqlx opened. idmesh's other sockets
//! (gRPC, HTTP, Redis, webhooks) set it themselves when they open.

/// The TCP sockets of this process, each with whether it runs with
/// `TCP_NODELAY`. Empty where `/proc/self/fd` cannot be read.
#[cfg(target_os = "linux")]
pub fn tcp_sockets() -> Vec<(std::os::fd::RawFd, bool)> {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .filter_map(|fd| Some((fd, nodelay(fd)?)))
        .collect()
}

/// Turns `TCP_NODELAY` on for every TCP socket of this process that runs
/// without it. A socket that refuses keeps Nagle's algorithm: slower, not
/// wrong.
#[cfg(target_os = "linux")]
pub fn set_where_missing() {
    for (fd, on) in tcp_sockets() {
        if !on {
            set_nodelay(fd);
        }
    }
}

/// Whether the TCP socket `fd` runs with `TCP_NODELAY`; `None` for a
/// descriptor that is not a TCP socket (or no longer open).
#[cfg(target_os = "linux")]
fn nodelay(fd: std::os::fd::RawFd) -> Option<bool> {
    let mut value: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: the call writes at most `len` bytes into `value`, which lives
    // across it. `fd` is only read: a descriptor closed since it was listed
    // fails with EBADF, one that is not a TCP socket with ENOTSOCK or
    // EOPNOTSUPP, and either is answered `None`.
    #[allow(unsafe_code)]
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&raw mut value).cast(),
            &raw mut len,
        )
    };
    (rc == 0).then_some(value != 0)
}

/// Turns `TCP_NODELAY` on for the TCP socket `fd`, if it still is one.
#[cfg(target_os = "linux")]
fn set_nodelay(fd: std::os::fd::RawFd) {
    let on: libc::c_int = 1;
    // SAFETY: the call reads `size_of::<c_int>()` bytes from `on`, which
    // lives across it. Should `fd` have been closed and its number reused
    // since it was listed, the call fails, or sets `TCP_NODELAY` on another
    // TCP socket of this process, which wants it as well.
    #[allow(unsafe_code)]
    unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&raw const on).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// Elsewhere sqlx's sockets stay as sqlx opens them.
#[cfg(not(target_os = "linux"))]
pub fn set_where_missing() {}
