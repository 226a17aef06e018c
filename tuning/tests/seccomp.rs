//! io_uring blocked the way containers block it: a seccomp filter that fails `io_uring_setup`
//! with EPERM (Docker's default profile) or ENOSYS (older profiles, gVisor). `ringway-tune` runs
//! under the filter; `auto` must resolve to epoll, a forced io_uring worker must fail with the
//! reason, and the epoll driver must still serve traffic.
#![cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
#![allow(clippy::unwrap_used)]

use std::process::Command;

use serde_json::Value;

#[allow(unsafe_code)]
mod filter {
    use std::io;
    use std::os::unix::process::CommandExt;
    use std::process::Command;

    #[cfg(target_arch = "x86_64")]
    const AUDIT_ARCH: u32 = 0xC000_003E;
    #[cfg(target_arch = "aarch64")]
    const AUDIT_ARCH: u32 = 0xC000_00B7;

    /// Makes `cmd`'s process fail `io_uring_setup` with `errno`.
    pub(crate) fn deny_io_uring_setup(cmd: &mut Command, errno: i32) {
        // SAFETY: the hook runs in the forked child before exec; it allocates nothing and only
        // calls prctl, which is async-signal-safe.
        unsafe {
            cmd.pre_exec(move || install(errno));
        }
    }

    fn stmt(code: u32, k: u32) -> libc::sock_filter {
        libc::sock_filter {
            code: u16::try_from(code).unwrap_or(0),
            jt: 0,
            jf: 0,
            k,
        }
    }

    fn jump(code: u32, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
        libc::sock_filter {
            code: u16::try_from(code).unwrap_or(0),
            jt,
            jf,
            k,
        }
    }

    fn install(errno: i32) -> io::Result<()> {
        let nr = u32::try_from(libc::SYS_io_uring_setup).unwrap_or(425);
        let errno = u32::try_from(errno).unwrap_or(1);
        // seccomp_data: nr at offset 0, arch at offset 4.
        let mut prog = [
            stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 4),
            jump(
                libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
                AUDIT_ARCH,
                0,
                3,
            ),
            stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0),
            jump(libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K, nr, 0, 1),
            stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ERRNO | errno),
            stmt(libc::BPF_RET | libc::BPF_K, libc::SECCOMP_RET_ALLOW),
        ];
        let fprog = libc::sock_fprog {
            len: 6,
            filter: prog.as_mut_ptr(),
        };
        // SAFETY: PR_SET_NO_NEW_PRIVS takes plain integers.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fprog` points at `prog`, both alive for the call; the kernel copies the program.
        if unsafe { libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &fprog) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

fn tune_without_io_uring(errno: i32) -> (Value, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ringway-tune"));
    cmd.args(["--json", "--probe-drivers", "--probe-seconds", "0.05"]);
    filter::deny_io_uring_setup(&mut cmd, errno);
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "ringway-tune failed under seccomp: {stderr}"
    );
    (serde_json::from_slice(&out.stdout).unwrap(), stderr)
}

fn check_fallback(errno: i32, errno_text: &str) {
    let (v, stderr) = tune_without_io_uring(errno);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let uring = &v["io_uring"];
    assert_eq!(uring["plain"]["ok"], false);
    assert!(
        uring["plain"]["error"]
            .as_str()
            .unwrap()
            .contains(errno_text),
        "{uring}"
    );
    assert_eq!(uring["coop_taskrun"]["ok"], false);
    assert_eq!(uring["auto_driver"], "epoll");

    let ring = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["check"] == "io_uring ring")
        .unwrap();
    assert_eq!(ring["status"], "warn");
    assert!(
        ring["recommendation"].as_str().unwrap().contains("epoll"),
        "{ring}"
    );

    let probe = v["driver_probe"].as_array().unwrap();
    let forced = probe.iter().find(|t| t["driver"] == "uring").unwrap();
    let err = forced["error"].as_str().unwrap();
    assert!(
        err.contains("io_uring requested") && err.contains(errno_text),
        "{err}"
    );
    let epoll = probe.iter().find(|t| t["driver"] == "epoll").unwrap();
    assert!(epoll["round_trips"].as_u64().unwrap() > 0, "{epoll}");
}

#[test]
fn eperm_from_seccomp_falls_back_to_epoll() {
    check_fallback(libc::EPERM, "Operation not permitted");
}

#[test]
fn enosys_from_seccomp_falls_back_to_epoll() {
    check_fallback(libc::ENOSYS, "Function not implemented");
}
