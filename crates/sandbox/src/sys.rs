//! The raw calls that have no safe wrapper in nix or rustix, by family:
//!
//! - processes: `clone` as fork ([`fork_child`], [`fork_clean`], also
//!   into a new pid namespace), `_exit`, and the `clone3` probe;
//! - descriptors: `close_range` (close-on-exec from a number on, or all
//!   but stdio), `close`, `dup2`/`dup3` and `fcntl` in a forked child, and
//!   closing what came across exec without close-on-exec (the keeper);
//! - signals: `rt_sigaction` ([`reset_signals`]), and the parent-death
//!   signal of a command, set between its fork and exec ([`kill_with_parent`]);
//! - security: installing a seccomp filter (`seccomp`), the
//!   `landlock_create_ruleset` version query, and the `keyctl` probe that
//!   shows what a filter allows;
//! - mounts: `mount_setattr` (read-only, recursively);
//! - network: the `SIOCGIFFLAGS`/`SIOCSIFFLAGS` ioctls that bring the
//!   loopback interface up ([`loopback_up`]);
//! - namespaces: the `NS_GET_NSTYPE`/`NS_GET_USERNS` ioctls that tell what a
//!   namespace handle is and who owns it ([`is_netns_owned_by`]);
//! - memory: `malloc_trim`.
//!
//! Everything else (unshare, setresuid, mount, pipes, waitpid) is already safe
//! in nix/rustix and is called directly by the modules that need it.
//!
//! Architecture invariant: this is the only module of den that may use
//! `unsafe`; it hands out safe functions and types ([`ForkedChild`]).
#![allow(unsafe_code)] // reason: the one module that wraps raw syscalls (STYLE.md §3)

use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::Pid;

/// Number of threads in this process, counted from `/proc/self/task`.
pub(crate) fn thread_count() -> io::Result<usize> {
    Ok(fs_err::read_dir("/proc/self/task")?.count())
}

/// Whether this process has exactly one thread, so [`fork_clean`] may fork
/// it (false when its threads cannot be counted).
pub fn single_threaded() -> bool {
    thread_count().is_ok_and(|n| n == 1)
}

/// Why [`fork_child`] did not fork.
#[derive(Debug, thiserror::Error)]
pub enum ForkError {
    #[error("cannot count this process's threads in /proc/self/task")]
    ThreadCount(#[source] io::Error),
    #[error(
        "refusing to fork: the process has {0} threads, and a forked child of a threaded process may only make async-signal-safe calls"
    )]
    MultiThreaded(usize),
    #[error("fork failed")]
    Fork(#[source] nix::Error),
}

/// A forked child that has not been reaped yet. Dropping it kills and reaps the
/// child, so no child outlives its handle as a zombie.
#[derive(Debug)]
pub(crate) struct ForkedChild {
    pid: Option<Pid>,
}

/// How a forked child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChildExit {
    Code(i32),
    Signal(Signal),
}

impl ForkedChild {
    /// Lets the child run on, never reaped here: for a parent that exits at
    /// once, so the child is reparented (the user namespace keeper).
    pub(crate) fn detach(mut self) {
        self.pid = None;
    }

    /// The child's pid (valid until it is reaped).
    pub(crate) fn pid(&self) -> Pid {
        self.pid
            .expect("pid is only taken when the child is reaped")
    }

    /// Reaps the child if it has exited; `None` while it runs.
    pub(crate) fn try_wait(&mut self) -> nix::Result<Option<ChildExit>> {
        let pid = self.pid();
        let exit = match waitpid(pid, Some(nix::sys::wait::WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => ChildExit::Code(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => ChildExit::Signal(sig),
            Ok(_) | Err(nix::Error::EINTR) => return Ok(None),
            Err(e) => return Err(e),
        };
        self.pid = None;
        Ok(Some(exit))
    }

    /// Block until the child exits and reap it.
    pub(crate) fn wait(mut self) -> nix::Result<ChildExit> {
        let pid = self.pid.take().expect("pid is only taken by wait or drop");
        loop {
            match waitpid(pid, None) {
                Ok(WaitStatus::Exited(_, code)) => return Ok(ChildExit::Code(code)),
                Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(ChildExit::Signal(sig)),
                Ok(_) | Err(nix::Error::EINTR) => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for ForkedChild {
    fn drop(&mut self) {
        if let Some(pid) = self.pid.take() {
            let _ = kill(pid, Signal::SIGKILL);
            while let Err(nix::Error::EINTR) = waitpid(pid, None) {}
        }
    }
}

/// Fork; the child runs `child` and then `_exit`s with its return value (101
/// if it panics). The child never returns into the caller.
///
/// Ownership splits resources (typically pipe ends) between the two sides:
/// `parent_only` is dropped in the child before `child` runs and handed back
/// to the parent; whatever `child` captures is dropped in the parent.
///
/// Only forks when the calling process has exactly one thread: then the child
/// is an exact copy with no lock held by a vanished thread, so it may allocate,
/// spawn processes and do anything an ordinary single-threaded program does.
/// Checking is race-free: with one thread, nobody else can start a second one.
pub(crate) fn fork_child<P>(
    parent_only: P,
    child: impl FnOnce() -> i32,
) -> Result<(ForkedChild, P), ForkError> {
    fork_child_in(false, parent_only, child)
}

/// [`fork_child`], and with `new_pid_ns` the child is PID 1 of a new pid
/// namespace (clone with CLONE_NEWPID: unlike `unshare`, this works again
/// for every child, which a supervisor that restarts its container needs).
pub(crate) fn fork_child_in<P>(
    new_pid_ns: bool,
    parent_only: P,
    child: impl FnOnce() -> i32,
) -> Result<(ForkedChild, P), ForkError> {
    match thread_count().map_err(ForkError::ThreadCount)? {
        1 => {}
        n => return Err(ForkError::MultiThreaded(n)),
    }
    let flags = libc::SIGCHLD as libc::c_ulong
        | if new_pid_ns {
            libc::CLONE_NEWPID as libc::c_ulong
        } else {
            0
        };
    // SAFETY: the process is single-threaded (checked just above, and no other
    // thread can exist to start one concurrently), so the child inherits no
    // lock held by another thread and may run arbitrary code. clone with only
    // SIGCHLD (and CLONE_NEWPID) and a null stack is fork: the child gets a
    // copy-on-write copy of this stack. The child branch below never returns:
    // it ends in `exit_now`, even when `child` panics.
    let ret = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    match ret {
        -1 => Err(ForkError::Fork(nix::Error::last())),
        0 => {
            drop(parent_only);
            let code = catch_unwind(AssertUnwindSafe(child)).unwrap_or(101);
            exit_now(code)
        }
        pid => {
            drop(child);
            Ok((
                ForkedChild {
                    pid: Some(Pid::from_raw(pid as i32)),
                },
                parent_only,
            ))
        }
    }
}

/// `_exit(2)`: end the process at once, without running atexit handlers or
/// flushing stdio buffers inherited from the parent (which would print the
/// parent's pending output twice).
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: `_exit` takes no pointers and never returns; skipping destructors
    // and atexit handlers is the intent (they belong to the parent's copy).
    unsafe { libc::_exit(code) }
}

/// The Landlock ABI version the kernel supports, from
/// `landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)`.
/// `Err(EOPNOTSUPP)`: built in but disabled at boot; `Err(ENOSYS)`: not built.
pub(crate) fn landlock_abi_version() -> nix::Result<i32> {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1 << 0;
    // SAFETY: with the VERSION flag the kernel requires attr == NULL and
    // size == 0 and reads no memory; it returns a number, not a descriptor, so
    // nothing is leaked.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0 as libc::size_t,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    if ret < 0 {
        Err(nix::Error::last())
    } else {
        Ok(ret as i32)
    }
}

/// `seccomp(SECCOMP_SET_MODE_FILTER, 0, program)`: install a classic-BPF
/// filter on the calling thread (no flags: no TSYNC, the container process
/// is single-threaded). `seccompiler::apply_filter` (0.5) does not fit: it
/// always sets no_new_privs first, and den sets it only when asked
/// (`container::security`), so a caller holding CAP_SYS_ADMIN in its user
/// namespace keeps setuid binaries working, as Docker does by default.
pub(crate) fn seccomp_set_mode_filter(program: &[seccompiler::sock_filter]) -> io::Result<()> {
    let len = u16::try_from(program.len())
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    let fprog = libc::sock_fprog {
        len,
        // `seccompiler::sock_filter` is `#[repr(C)]` with the same fields as
        // `libc::sock_filter` (u16, u8, u8, u32), so the layouts agree.
        filter: program.as_ptr().cast::<libc::sock_filter>().cast_mut(),
    };
    // SAFETY: `fprog` points at `len` initialised instructions that outlive
    // the call; the kernel only reads them (copy_from_user) and validates
    // the program before installing it. `fprog.filter` is `*mut` by libc's
    // declaration only: nothing writes through it.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0 as libc::c_uint,
            &fprog as *const libc::sock_fprog,
        )
    };
    match ret {
        0 => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

/// `clone3(NULL, 0)`, which never creates a task: the kernel refuses a size
/// below `CLONE_ARGS_SIZE_VER0` with EINVAL before anything else, so EINVAL
/// means the call reached the kernel; another errno means a seccomp filter
/// (or a kernel without clone3: ENOSYS) answered first.
pub(crate) fn clone3_null() -> nix::errno::Errno {
    // SAFETY: size 0 makes the kernel return EINVAL before it reads the
    // (null) argument or creates a task, so no memory is touched and the
    // call cannot return twice.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            std::ptr::null::<libc::c_void>(),
            0 as libc::size_t,
        )
    };
    debug_assert_eq!(ret, -1, "clone3 with size 0 cannot succeed");
    nix::errno::Errno::last()
}

/// `keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_THREAD_KEYRING, 0)`: look up the
/// thread keyring without creating it; Ok(id) or the errno (ENOKEY when
/// there is none, EPERM from a seccomp filter that denies keyctl).
pub(crate) fn keyctl_thread_keyring_id() -> nix::Result<i64> {
    const KEYCTL_GET_KEYRING_ID: libc::c_int = 0;
    const KEY_SPEC_THREAD_KEYRING: libc::c_int = -1;
    // SAFETY: this keyctl operation takes three integers and no pointers,
    // and with create == 0 it changes nothing.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_keyctl,
            KEYCTL_GET_KEYRING_ID,
            KEY_SPEC_THREAD_KEYRING,
            0 as libc::c_int,
        )
    };
    match ret {
        r if r >= 0 => Ok(r),
        _ => Err(nix::errno::Errno::last()),
    }
}

/// Marks every file descriptor from `first` up close-on-exec, so the
/// container's command inherits only stdio and the fds passed on purpose.
pub(crate) fn cloexec_from(first: u32) {
    // SAFETY: close_range only changes flags of this process's descriptors;
    // CLOSE_RANGE_CLOEXEC closes nothing now, so no fd owned by Rust code
    // becomes dangling. Failure (kernels before 5.11) leaves fds as they are.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
    }
}

/// Closes the descriptors this process inherited across exec: those without
/// close-on-exec (den opens every one of its own with the flag). For a den
/// that lives on in the background (the user namespace keeper), so it holds
/// nothing of whoever started the den that started it.
pub(crate) fn close_inherited_fds() {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<libc::c_int> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2)
        .collect();
    for fd in fds {
        // SAFETY: F_GETFD only reads the flags of a descriptor number; a
        // closed one (the listing's own) gives EBADF (-1), which is skipped.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
        if flags >= 0 && flags & libc::FD_CLOEXEC == 0 {
            // SAFETY: a descriptor without close-on-exec came across exec
            // from the parent; no Rust object of this process owns it (den
            // opens its own close-on-exec), so nothing uses the number later.
            unsafe { libc::close(fd) };
        }
    }
}

/// Closes every descriptor of this process except `keep`: for a forked
/// helper (the container's guard) that must not hold the supervisor's pipes,
/// FIFO or namespace handles open.
///
/// Only for a forked child that then runs to `exit_now` without touching any
/// other descriptor: the objects that own the closed descriptors are copies
/// of the parent's and are never used or dropped here.
pub(crate) fn close_fds_except(keep: &[std::os::fd::RawFd]) {
    let mut keep: Vec<u32> = keep
        .iter()
        .filter_map(|&fd| u32::try_from(fd).ok())
        .collect();
    keep.sort_unstable();
    let mut first = 0u32;
    for k in keep.into_iter().chain([u32::MAX]) {
        if k > first {
            // SAFETY: close_range takes no pointers. The descriptors it closes
            // belong to objects this forked child never uses again (it runs
            // only code that uses `keep`, then `_exit`s without running
            // destructors), so nothing reads, writes or closes them later.
            unsafe {
                libc::syscall(libc::SYS_close_range, first, k - 1, 0 as libc::c_uint);
            }
        }
        first = k.saturating_add(1);
    }
}

/// For a process that never execs (den's `--init`): closes every descriptor
/// from 3 up except the `preserved` ones the user passed on (3 to
/// 3+preserved-1), and among those closes den's own, which are all
/// close-on-exec. Must only be called by a process that ends in
/// [`exit_now`] without returning to the code that owns those descriptors.
pub(crate) fn close_all_but_stdio(preserved: u32) {
    let first_closed = 3u32.saturating_add(preserved);
    for fd in 3..first_closed {
        // SAFETY: F_GETFD only reads the flags of a descriptor number; an
        // unused number gives EBADF (-1), which is skipped.
        let flags = unsafe { libc::fcntl(fd as libc::c_int, libc::F_GETFD) };
        if flags >= 0 && flags & libc::FD_CLOEXEC != 0 {
            // SAFETY: a close-on-exec descriptor here is den's own, owned by
            // code this process never returns to (see the doc): nothing
            // uses the number afterwards.
            unsafe { libc::close(fd as libc::c_int) };
        }
    }
    // SAFETY: as above, the descriptors closed here belong to code this
    // process never returns to; close_range takes no pointers. On kernels
    // before 5.9 it fails and nothing is closed.
    unsafe {
        libc::syscall(libc::SYS_close_range, first_closed, u32::MAX, 0u32);
    }
}

/// Gives freed heap memory back to the kernel (glibc `malloc_trim`), and
/// the stack pages below the current frame: the supervisor lives as long as
/// its container, and what start-up used (flag parsing, the spec, the
/// seccomp compile, the CLI's deepest calls) is not needed again.
pub(crate) fn release_free_memory() {
    // SAFETY: malloc_trim only walks glibc's own heap bookkeeping under its
    // lock; it takes no pointers from us and is safe to call at any time in a
    // process that uses glibc's allocator (Rust's default on Linux/glibc).
    unsafe {
        libc::malloc_trim(0);
    }
    release_unused_stack();
}

/// Drops the main stack's pages more than 16 KiB below this frame: the
/// deeper calls that dirtied them have returned, so nothing reads them
/// again, and a later call gets zeroed pages, as at first touch.
fn release_unused_stack() {
    let Some(lowest) = stack_lowest_address() else {
        return;
    };
    let here = std::hint::black_box(&lowest) as *const usize as usize;
    let end = here.saturating_sub(16 * 1024) & !(4096 - 1);
    if end <= lowest {
        return;
    }
    // SAFETY: [lowest, end) lies in the main thread's stack mapping, below
    // the stack pointer by more than the frames of this call and of
    // madvise's (16 KiB): no live frame or value is there. The process has
    // one thread (fork_clean's child), so no other stack is involved, and
    // MADV_DONTNEED on private anonymous memory only makes the pages read
    // as zeros when touched again.
    unsafe {
        libc::madvise(
            lowest as *mut libc::c_void,
            end - lowest,
            libc::MADV_DONTNEED,
        );
    }
}

/// Where the main thread's stack mapping starts (`[stack]` in maps), read
/// once per process image and kept (a fork keeps it too, rightly: the
/// child's stack is at the same addresses). The kernel never shrinks a
/// stack mapping, so an address read earlier is still inside it. Reading it
/// once also keeps a supervisor from opening /proc/self/maps while it runs
/// (anyone listing its descriptors then sees only its own).
fn stack_lowest_address() -> Option<usize> {
    static LOWEST: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();
    *LOWEST.get_or_init(|| {
        let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
        let line = maps.lines().find(|l| l.ends_with("[stack]"))?;
        usize::from_str_radix(line.split('-').next()?, 16).ok()
    })
}

/// Reads where the stack starts now, while the process is starting, so
/// [`release_free_memory`] later opens no file.
pub(crate) fn remember_stack() {
    stack_lowest_address();
}

/// `mount_setattr(fd, "", AT_EMPTY_PATH [| AT_RECURSIVE], {attr_set: RDONLY})`:
/// makes the mount at `fd` read-only, and with `recursive` every mount
/// below it.
pub(crate) fn mount_setattr_rdonly(
    fd: std::os::fd::BorrowedFd<'_>,
    recursive: bool,
) -> nix::Result<()> {
    use std::os::fd::AsRawFd;
    let at_recursive: libc::c_uint = if recursive { 0x8000 } else { 0 };
    const MOUNT_ATTR_RDONLY: u64 = 0x1;
    // struct mount_attr { u64 attr_set, attr_clr, propagation, userns_fd }.
    let attr: [u64; 4] = [MOUNT_ATTR_RDONLY, 0, 0, 0];
    // SAFETY: the path is a valid NUL-terminated empty string, `attr` is a
    // live, correctly sized struct mount_attr the kernel only reads, and the
    // fd is borrowed for the duration of the call.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH as libc::c_uint | at_recursive,
            attr.as_ptr(),
            std::mem::size_of_val(&attr),
        )
    };
    nix::errno::Errno::result(ret).map(drop)
}

/// The kernel's `struct sigaction` (x86_64 and aarch64 alike: both define
/// `SA_RESTORER`, so the restorer field is there).
#[repr(C)]
struct KernelSigaction {
    handler: libc::sighandler_t,
    flags: libc::c_ulong,
    restorer: usize,
    mask: u64,
}

/// Which dispositions [`reset_signals`] keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepSignals {
    /// A fresh den's, as exec leaves them for [`fork_clean`]'s child:
    /// ignored signals stay ignored, caught ones go back to their default,
    /// except Rust's SIGSEGV and SIGBUS handlers (its stack overflow
    /// report, installed in every den at start-up) and glibc's own 32 and
    /// 33; SIGPIPE ignored, as Rust's start-up has it.
    FreshDen,
    /// None: every signal at its default, as a process a fresh runtime
    /// starts has (the container's command, as under Docker). An ignored
    /// signal survives execve, and den's own runtime ignores SIGPIPE while
    /// the user's shell may ignore others (`nohup` ignores SIGHUP).
    Nothing,
}

/// Signal dispositions reset as `keep` says, and none blocked. Through
/// the raw `rt_sigaction`, which reaches the signals glibc's wrapper
/// refuses (32, 33). SIGKILL and SIGSTOP cannot change. Single-threaded
/// callers only (no handler runs meanwhile).
pub fn reset_signals(keep: KeepSignals) {
    let kept = |sig: libc::c_int| match keep {
        KeepSignals::FreshDen => {
            [libc::SIGSEGV, libc::SIGBUS].contains(&sig) || (32..libc::SIGRTMIN()).contains(&sig)
        }
        KeepSignals::Nothing => false,
    };
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP || kept(sig) {
            continue;
        }
        let caught =
            |old: &KernelSigaction| old.handler != libc::SIG_DFL && old.handler != libc::SIG_IGN;
        if keep == KeepSignals::Nothing || sigaction(sig, None).is_some_and(|old| caught(&old)) {
            sigaction(sig, Some(libc::SIG_DFL));
        }
    }
    if keep == KeepSignals::FreshDen {
        sigaction(libc::SIGPIPE, Some(libc::SIG_IGN));
    }
    nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    )
    .ok();
}

/// `rt_sigaction(sig)`: sets `handler` (SIG_DFL or SIG_IGN, no flags),
/// if given; returns the action before, `None` when the kernel refused.
fn sigaction(sig: libc::c_int, handler: Option<libc::sighandler_t>) -> Option<KernelSigaction> {
    let new = handler.map(|handler| KernelSigaction {
        handler,
        flags: 0,
        restorer: 0,
        mask: 0,
    });
    let new_ptr = new
        .as_ref()
        .map_or(std::ptr::null(), |n| n as *const KernelSigaction);
    let mut old = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    // SAFETY: `new` (when given) is a valid kernel sigaction for SIG_DFL or
    // SIG_IGN, which need no restorer and run no code of ours; `old` is a
    // valid struct on our stack the kernel writes the previous action to;
    // the size is the kernel's 8-byte sigset. The kernel keeps no pointer.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            sig,
            new_ptr,
            &mut old as *mut KernelSigaction,
            8usize,
        )
    };
    (ret == 0).then_some(old)
}

/// What a [`fork_clean`] child gets as its stdin, stdout and stderr: `None`
/// keeps the parent's.
pub type ChildStdio = [Option<std::os::fd::OwnedFd>; 3];

/// Forks a child that starts as clean as a fresh exec of this binary would:
/// `stdio` on 0, 1 and 2; every close-on-exec descriptor closed (those
/// without the flag stay, as across exec: `--preserve-fds`) except `follow`,
/// which become copies of the child's stderr (close-on-exec, as they were:
/// the step timer's copy); the signal dispositions of a fresh den (a caught
/// signal is back to its default, an ignored one stays ignored, as exec
/// leaves them; SIGPIPE ignored and Rust's SIGSEGV/SIGBUS handlers, as
/// Rust's start-up makes them); an empty signal mask; the free
/// heap given back. The child runs `child` and `_exit`s with its value (101
/// if it panics, after flushing its stdout); it never returns into the
/// caller. The caller reaps it (waitpid on the pid).
///
/// Refused unless the process has exactly one thread (the caller then execs
/// instead). `flock` locks the parent holds stay the parent's: the child
/// closes its copies, so they end when the parent closes its own.
pub fn fork_clean(
    stdio: ChildStdio,
    follow: &[std::os::fd::RawFd],
    child: impl FnOnce() -> i32,
) -> Result<Pid, ForkError> {
    use std::io::Write;
    match thread_count().map_err(ForkError::ThreadCount)? {
        1 => {}
        n => return Err(ForkError::MultiThreaded(n)),
    }
    // The child must not print the parent's buffered output again.
    std::io::stdout().flush().ok();
    // SAFETY: the process is single-threaded (checked just above; no other
    // thread exists to start one meanwhile), so the child inherits no lock
    // held by another thread and may run arbitrary code. clone with only
    // SIGCHLD and a null stack is fork. The child branch never returns: it
    // ends in `exit_now`, even when `child` panics.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone,
            libc::SIGCHLD as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    match ret {
        -1 => Err(ForkError::Fork(nix::Error::last())),
        0 => {
            start_clean(stdio, follow);
            let code = catch_unwind(AssertUnwindSafe(child)).unwrap_or(101);
            std::io::stdout().flush().ok();
            exit_now(code)
        }
        pid => {
            drop(stdio);
            Ok(Pid::from_raw(pid as i32))
        }
    }
}

/// The forked child's side of [`fork_clean`], before it runs its code.
fn start_clean(stdio: ChildStdio, follow: &[std::os::fd::RawFd]) {
    use std::os::fd::AsRawFd;
    for (target, fd) in stdio.iter().enumerate() {
        let Some(fd) = fd else { continue };
        let target = target as libc::c_int;
        // SAFETY: dup2/fcntl take descriptor numbers only. Replacing 0, 1
        // or 2 is the intent: this child's std streams become `fd`'s file.
        // When `fd` already is `target`, dup2 does nothing, so its
        // close-on-exec flag is cleared by hand.
        unsafe {
            if fd.as_raw_fd() == target {
                libc::fcntl(target, libc::F_SETFD, 0);
            } else {
                libc::dup2(fd.as_raw_fd(), target);
            }
        }
    }
    for &fd in follow {
        // SAFETY: dup3 takes descriptor numbers only; it atomically points
        // `fd` (a close-on-exec copy of stderr kept by a static of this
        // child) at the new stderr, so its owner writes there.
        unsafe {
            libc::dup3(2, fd, libc::O_CLOEXEC);
        }
    }
    // The parent's objects that own the closed descriptors (the `stdio`
    // copies included) are never used or dropped in this child: it runs
    // `child`, which opens what it needs, then `_exit`s.
    close_cloexec_fds(follow);
    std::mem::forget(stdio);
    reset_signals(KeepSignals::FreshDen);
    release_free_memory();
}

/// Closes every close-on-exec descriptor but `keep`, as an exec would:
/// den's own (Rust opens every file close-on-exec) go, those den inherited
/// without the flag (`--preserve-fds`) stay.
fn close_cloexec_fds(keep: &[std::os::fd::RawFd]) {
    let fds: Vec<libc::c_int> = match std::fs::read_dir("/proc/self/fd") {
        Ok(dir) => dir
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse().ok())
            .collect(),
        Err(_) => return,
    };
    for fd in fds.into_iter().filter(|fd| *fd > 2 && !keep.contains(fd)) {
        // SAFETY: F_GETFD only reads a descriptor's flags (EBADF for the
        // directory read above, closed by now). A close-on-exec one belongs
        // to an object of the parent's that this child never uses or drops
        // (see `start_clean`), so nothing touches the number afterwards.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 && flags & libc::FD_CLOEXEC != 0 {
                libc::close(fd);
            }
        }
    }
}

/// Brings the loopback interface up in the calling process's network
/// namespace, as `ip link set lo up` does: a new namespace starts with it
/// down, and the kernel gives it 127.0.0.1/8 and ::1 once it is up.
pub fn loopback_up() -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let sock = rustix::net::socket_with(
        rustix::net::AddressFamily::INET,
        rustix::net::SocketType::DGRAM,
        rustix::net::SocketFlags::CLOEXEC,
        None,
    )?;
    // SAFETY: ifreq is plain data (a name and a union of integers and
    // addresses), for which all zeros is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS reads the name and writes the flags of `req`,
    // which outlives the call; `sock` is an open socket.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: SIOCGIFFLAGS filled `ifru_flags`, the member of the union
    // read and written here.
    unsafe { req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short };
    // SAFETY: SIOCSIFFLAGS only reads `req` (name and flags).
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `NS_GET_USERNS` and `NS_GET_NSTYPE` of `<linux/nsfs.h>`: `_IO(0xb7, 1)`
/// and `_IO(0xb7, 3)`.
const NS_GET_USERNS: libc::c_ulong = 0xb701;
const NS_GET_NSTYPE: libc::c_ulong = 0xb703;

/// Whether `ns` is a network namespace owned by the user namespace `owner`
/// (the same namespace: same device and inode of nsfs).
pub fn is_netns_owned_by(
    ns: std::os::fd::BorrowedFd<'_>,
    owner: std::os::fd::BorrowedFd<'_>,
) -> io::Result<bool> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    // SAFETY: NS_GET_NSTYPE takes no argument and returns the type.
    let kind = unsafe { libc::ioctl(ns.as_raw_fd(), NS_GET_NSTYPE) };
    if kind < 0 {
        return Err(io::Error::last_os_error());
    }
    if kind != libc::CLONE_NEWNET {
        return Ok(false);
    }
    // SAFETY: NS_GET_USERNS takes no argument and returns a new descriptor
    // (close-on-exec), which `OwnedFd` then owns alone.
    let user = unsafe { libc::ioctl(ns.as_raw_fd(), NS_GET_USERNS) };
    if user < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `user` is a descriptor just returned to us and owned by nobody else.
    let user = unsafe { OwnedFd::from_raw_fd(user) };
    let (a, b) = (rustix::fs::fstat(&user)?, rustix::fs::fstat(owner)?);
    Ok((a.st_dev, a.st_ino) == (b.st_dev, b.st_ino))
}

/// Has the kernel SIGKILL the process `cmd` starts when the thread that
/// starts it exits (`PR_SET_PDEATHSIG`, set in the child between fork and
/// exec), as `setpriv --pdeathsig KILL` does, without that program's exec.
/// A child whose parent is already gone by then fails to start instead.
pub fn kill_with_parent(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    let parent = rustix::process::getpid();
    // SAFETY: the closure runs in the forked child before exec; it makes
    // two system calls through rustix (prctl, getppid), which neither
    // allocate nor take locks, so it is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
            // An errno, not a message: nothing may allocate here.
            match rustix::process::getppid() == Some(parent) {
                true => Ok(()),
                false => Err(io::Error::from_raw_os_error(libc::ESRCH)),
            }
        });
    }
}

/// Rewrites this process's command line in place to `args` (cut to the
/// length of the one it had, NUL-padded), as setproctitle does, so `ps` and
/// `pgrep -f` show what the process is: a forked supervisor is not `den
/// run`, whose command line names the container's command. The bytes go
/// through /proc/self/mem; every argv string stays NUL-terminated.
pub fn set_cmdline(args: &[&str]) {
    use std::os::unix::fs::FileExt;
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return;
    };
    // arg_start and arg_end: fields 48 and 49, counted after the command.
    let Some(close) = stat.rfind(')') else { return };
    let fields: Vec<u64> = stat[close + 2..]
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let (Some(&start), Some(&end)) = (fields.get(45), fields.get(46)) else {
        return;
    };
    let mut title = args.join("\0").into_bytes();
    title.resize(end.saturating_sub(start) as usize, 0);
    if let Some(last) = title.last_mut() {
        *last = 0;
    }
    if let Ok(mem) = std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/self/mem")
    {
        mem.write_all_at(&title, start).ok();
    }
}
