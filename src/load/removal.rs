//! Removing many kprobes without making the user wait. Each kprobe's perf
//! event waits out RCU grace periods under the kernel's event_mutex when it
//! is destroyed (perf_kprobe_destroy → perf_trace_event_unreg →
//! tracepoint_synchronize_unregister), so closing them one after another
//! takes a tenth of a second each in a small VM, and threads do not help.
//! Instead the pattern's program is told to do nothing from now on, and a
//! forked process that holds only the links closes them at its exit, while
//! netcap reports and ends. The child exits only after netcap has closed its
//! own copies: whichever closes last pays for the removal.

use std::os::fd::{AsFd, AsRawFd};

use anyhow::{Context, Result, anyhow};
use libbpf_rs::{Link, MapCore, MapFlags, Object};

/// Below this many kprobes detaching in place takes a few seconds at most.
pub const IN_BACKGROUND_FROM: usize = 32;

/// Tells the group's program to do nothing (`netcap_group_stopped`).
fn stop_program(object: &Object) -> Result<()> {
    let map = object
        .maps()
        .find(|m| m.name().to_string_lossy().ends_with(".data.stop"))
        .ok_or_else(|| anyhow!("the BPF object has no .data.stop"))?;
    map.update(&0u32.to_ne_bytes(), &1u32.to_ne_bytes(), MapFlags::ANY).context("stopping the pattern's program")
}

/// Hands `links` to a new process that removes them, and returns its PID.
/// Nothing runs the group's program after this returns.
pub fn remove_in_background(object: &Object, links: Vec<Link>) -> Result<i32> {
    stop_program(object)?;
    // The child waits on this pipe until this process has closed its copies
    // of the links: a child that exited first would leave this process's
    // closes as the last, and so the slow removal in place.
    let mut ends = [0i32; 2];
    // SAFETY: pipe2 writes two descriptors into the array it is given.
    if unsafe { libc::pipe2(ends.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error()).context("making the pipe the kprobes' remover waits on");
    }
    let [wait_end, release_end] = ends;
    let mut kept: Vec<i32> = links.iter().map(|l| l.as_fd().as_raw_fd()).collect();
    kept.push(wait_end);
    kept.sort_unstable();
    // SAFETY: sysconf has no preconditions.
    let open_max = unsafe { libc::sysconf(libc::_SC_OPEN_MAX) }.clamp(1024, 1 << 20) as i32;
    // SAFETY: the child calls only async-signal-safe functions (setsid,
    // close_range or close, read, _exit) on data prepared before the fork.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        let err = std::io::Error::last_os_error();
        // SAFETY: both ends are this process's own and closed once.
        unsafe {
            libc::close(wait_end);
            libc::close(release_end);
        }
        return Err(err).context("forking the process that removes the kprobes");
    }
    if pid == 0 {
        // SAFETY: see above; the child never returns into Rust code.
        unsafe {
            // Out of the terminal's process group: a second Ctrl-C is not for it.
            libc::setsid();
            let mut next = 0;
            for &fd in &kept {
                close_between(next, fd - 1, open_max);
                next = fd + 1;
            }
            close_between(next, open_max, open_max);
            // End of file once the parent has closed its copies (or died).
            let mut byte = 0u8;
            while libc::read(wait_end, (&raw mut byte).cast(), 1) < 0 && *libc::__errno_location() == libc::EINTR {}
            // Exiting closes the links: the kernel removes each kprobe then.
            libc::_exit(0);
        }
    }
    // This process's copies are not the last: closing them costs nothing,
    // and libbpf must not detach what the child now owns.
    for link in links {
        // SAFETY: the fd is the link's own; the link is forgotten below, so
        // nothing closes it twice.
        unsafe { libc::close(link.as_fd().as_raw_fd()) };
        std::mem::forget(link);
    }
    // SAFETY: both ends are this process's own; closing the writing end
    // lets the child go.
    unsafe {
        libc::close(wait_end);
        libc::close(release_end);
    }
    Ok(pid)
}

/// Closes every descriptor in first..=last (async-signal-safe).
unsafe fn close_between(first: i32, last: i32, open_max: i32) {
    if first > last {
        return;
    }
    // SAFETY: close_range takes plain integers (5.9 on); before, one close each.
    let closed = unsafe { libc::syscall(libc::SYS_close_range, first as u32, last as u32, 0u32) };
    if closed != 0 {
        for fd in first..=last.min(open_max) {
            // SAFETY: closing a descriptor number, open or not.
            unsafe { libc::close(fd) };
        }
    }
}
