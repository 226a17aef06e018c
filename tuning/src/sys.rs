//! The raw system calls ringway needs that std does not wrap: CPU affinity, resource limits and
//! duplicating or writing to a socket owned by the monoio runtime. Every `unsafe` block of the workspace lives
//! here, each with the reason it is sound.
#![allow(unsafe_code)]

use std::io;
use std::mem::size_of;
use std::os::fd::{BorrowedFd, OwnedFd, RawFd};

/// CPUs a `cpu_set_t` can hold.
pub(crate) const CPU_SET_CAPACITY: usize = libc::CPU_SETSIZE as usize;

/// The CPUs the process (its main thread, whose id is the process id) may run on.
pub(crate) fn process_affinity() -> io::Result<Vec<usize>> {
    // SAFETY: `cpu_set_t` is a plain bit array; all-zero is a valid (empty) set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `getpid` has no preconditions; the size passed is the size of `set`, which the
    // kernel writes into and which lives until the end of this function.
    let rc =
        unsafe { libc::sched_getaffinity(libc::getpid(), size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: every index is below CPU_SETSIZE, the capacity of `set`, so CPU_ISSET reads inside it.
    let cpus = (0..CPU_SET_CAPACITY)
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect();
    Ok(cpus)
}

/// Soft and hard limit of `resource` (a `libc::RLIMIT_*`); `None` stands for unlimited.
pub(crate) fn get_rlimit(
    resource: libc::__rlimit_resource_t,
) -> io::Result<(Option<u64>, Option<u64>)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable `rlimit` for the duration of the call.
    let rc = unsafe { libc::getrlimit(resource, &mut lim) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((finite(lim.rlim_cur), finite(lim.rlim_max)))
}

/// Sets the soft limit of `resource` to `soft`, keeping the hard limit.
pub(crate) fn set_soft_rlimit(resource: libc::__rlimit_resource_t, soft: u64) -> io::Result<()> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable `rlimit` for the duration of the call.
    if unsafe { libc::getrlimit(resource, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    lim.rlim_cur = soft;
    // SAFETY: `lim` is a valid, initialised `rlimit`; the kernel only reads it.
    if unsafe { libc::setrlimit(resource, &lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// CPU time the calling thread has used (`CLOCK_THREAD_CPUTIME_ID`).
pub(crate) fn thread_cpu_time() -> io::Result<std::time::Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable `timespec` for the duration of the call.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u32::try_from(ts.tv_nsec).unwrap_or(0);
    Ok(std::time::Duration::new(secs, nanos))
}

/// Sets the calling thread's timer slack (`PR_SET_TIMERSLACK`): how much later than asked the
/// kernel may end its sleeps (50 µs by default), so that a sleep measures the host's wake-up
/// latency and not the slack.
pub(crate) fn set_timer_slack(nanos: u64) -> io::Result<()> {
    let slack = libc::c_ulong::try_from(nanos.max(1)).unwrap_or(libc::c_ulong::MAX);
    // SAFETY: PR_SET_TIMERSLACK takes one integer argument and touches no memory of ours.
    if unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, slack, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn finite(v: libc::rlim_t) -> Option<u64> {
    (v != libc::RLIM_INFINITY).then_some(v)
}

/// A new descriptor (close-on-exec) for the socket behind `fd`.
///
/// The caller must hold the object that owns `fd` (here: a monoio `TcpStream` taken by value)
/// for the whole call, so that `fd` is open and cannot be closed or reused meanwhile.
pub(crate) fn dup_owned(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: per this function's contract `fd` is open and owned by a value the caller keeps
    // alive until we return; the borrow does not outlive this call.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    borrowed.try_clone_to_owned()
}

/// A nonblocking `send` of `buf` on the socket behind `fd`: the count the kernel took, 0 if
/// the socket buffer is full.
///
/// The caller must hold the object that owns `fd` (here: a borrowed monoio `TcpStream`) for
/// the whole call, so that `fd` is open and cannot be closed or reused meanwhile.
pub(crate) fn send_dontwait(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: per this function's contract `fd` is open and owned by a value the caller keeps
    // borrowed until we return; the borrow does not outlive this call.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    match socket2::SockRef::from(&borrowed)
        .send_with_flags(buf, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL)
    {
        Ok(n) => Ok(n),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
        Err(e) => Err(e),
    }
}

/// Makes `cmd`'s child start with an empty signal mask, whatever the parent's thread blocks (a
/// parent that waits for signals with sigwait/signalfd blocks them, and exec keeps the mask).
pub(crate) fn clear_signal_mask_before_exec(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    let clear = || {
        // SAFETY: a zeroed sigset_t is a valid value to hand to sigemptyset, which initialises it.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a live local; sigemptyset and pthread_sigmask are async-signal-safe,
        // so they may run in the child between fork and exec; the old mask is not asked for.
        let rc = unsafe {
            libc::sigemptyset(&mut set);
            libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut())
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::from_raw_os_error(rc))
        }
    };
    // SAFETY: the closure runs in the forked child before exec; it allocates nothing, takes no
    // lock and only calls the async-signal-safe functions above.
    unsafe {
        cmd.pre_exec(clear);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn affinity_is_not_empty() {
        let cpus = process_affinity().unwrap();
        assert!(!cpus.is_empty());
        assert!(cpus.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn nofile_limit_is_readable() {
        let (soft, hard) = get_rlimit(libc::RLIMIT_NOFILE).unwrap();
        if let (Some(s), Some(h)) = (soft, hard) {
            assert!(s <= h);
        }
    }

    #[test]
    fn thread_cpu_time_advances() {
        let a = thread_cpu_time().unwrap();
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
        }
        assert!(thread_cpu_time().unwrap() > a, "{x}");
    }

    #[test]
    fn dup_keeps_the_socket_open() {
        use std::os::fd::AsRawFd;
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let owned = dup_owned(l.as_raw_fd()).unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let l2 = std::net::TcpListener::from(owned);
        assert_eq!(l2.local_addr().unwrap(), addr);
        std::net::TcpStream::connect(addr).unwrap();
    }
}
