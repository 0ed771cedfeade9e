//! den's seccomp policy as data: Docker's default profile
//! (moby `profiles/seccomp/default.json`, the copy in
//! `shared/reference/seccomp/moby-profiles-default.json`) restated for the
//! 64-bit ABIs den filters (x86_64, aarch64).
//!
//! Anything not listed fails with EPERM. Names that do not exist on the
//! running architecture are skipped, as libseccomp does for Docker. Docker's
//! names for 32-bit ABIs only (`chown32`, `*_time64`, `socketcall`, ...) are
//! left out: den's filter refuses those ABIs as a whole.
//!
//! A unit test (`matches_docker_reference`) evaluates Docker's JSON for
//! x86_64 and aarch64 with several capability sets and checks that it allows
//! exactly what this file allows, so a drift from Docker is a test failure.
//! Changing this file changes the cache key of compiled filters by itself (the
//! key hashes this data), so no version needs bumping.

use caps::Capability;

/// Which Docker profile this restates; part of the compiled-filter cache key.
pub const DOCKER_PROFILE: &str =
    "moby profiles/seccomp/default.json as in shared/reference (socket denies AF_ALG, AF_VSOCK)";

/// A group of system calls allowed together, and why.
#[derive(Debug)]
pub struct Group {
    pub why: &'static str,
    pub syscalls: &'static [&'static str],
}

/// Allowed for every container, whatever its capabilities. Privileged
/// operations among them (setuid, chown, mknod, ...) are still checked by the
/// kernel against the container's capabilities and user namespace.
#[rustfmt::skip] // several names a line: easier to review than one a line
pub const ALWAYS: &[Group] = &[
    Group {
        why: "files and directories by path or descriptor; the kernel checks permissions",
        syscalls: &[
            "open", "openat", "openat2", "creat", "close", "close_range", "access", "faccessat",
            "faccessat2", "stat", "lstat", "fstat", "newfstatat", "statx", "statfs", "fstatfs",
            "getdents", "getdents64", "getcwd", "chdir", "fchdir", "mkdir", "mkdirat", "rmdir",
            "rename", "renameat", "renameat2", "link", "linkat", "unlink", "unlinkat", "symlink",
            "symlinkat", "readlink", "readlinkat", "mknod", "mknodat", "chmod", "fchmod",
            "fchmodat", "fchmodat2", "chown", "fchown", "lchown", "fchownat", "truncate",
            "ftruncate", "utime", "utimes", "utimensat", "futimesat", "name_to_handle_at", "umask",
        ],
    },
    Group {
        why: "extended attributes (file capabilities and ACLs are checked by the kernel)",
        syscalls: &[
            "getxattr", "lgetxattr", "fgetxattr", "getxattrat", "setxattr", "lsetxattr",
            "fsetxattr", "setxattrat", "listxattr", "llistxattr", "flistxattr", "listxattrat",
            "removexattr", "lremovexattr", "fremovexattr", "removexattrat",
        ],
    },
    Group {
        why: "reading, writing and moving data between descriptors",
        syscalls: &[
            "read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev",
            "preadv2", "pwritev2", "lseek", "dup", "dup2", "dup3", "fcntl", "flock",
            "fsync", "fdatasync", "sync", "syncfs", "sync_file_range", "fallocate", "fadvise64",
            "readahead", "sendfile", "splice", "tee", "vmsplice", "copy_file_range", "pipe",
            "pipe2", "cachestat",
        ],
    },
    Group {
        why: "waiting for events: poll/select/epoll, eventfd, inotify, fanotify marks \
              (creating a fanotify group needs CAP_SYS_ADMIN, below)",
        syscalls: &[
            "poll", "ppoll", "select", "pselect6", "epoll_create", "epoll_create1", "epoll_ctl",
            "epoll_ctl_old", "epoll_wait", "epoll_wait_old", "epoll_pwait", "epoll_pwait2",
            "eventfd", "eventfd2", "inotify_init", "inotify_init1", "inotify_add_watch",
            "inotify_rm_watch", "fanotify_mark",
        ],
    },
    Group {
        why: "Linux AIO (io_uring stays denied, as in Docker: a large kernel attack surface)",
        syscalls: &[
            "io_setup", "io_destroy", "io_submit", "io_cancel", "io_getevents", "io_pgetevents",
        ],
    },
    Group {
        why: "memory management of the process itself",
        syscalls: &[
            "brk", "mmap", "munmap", "mprotect", "mremap", "madvise", "mincore", "msync", "mlock",
            "mlock2", "mlockall", "munlock", "munlockall", "membarrier", "memfd_create",
            "memfd_secret", "pkey_alloc", "pkey_free", "pkey_mprotect", "remap_file_pages",
            "map_shadow_stack", "mseal",
        ],
    },
    Group {
        why: "starting programs and waiting for them (clone is a conditional rule below)",
        syscalls: &[
            "execve", "execveat", "fork", "vfork", "wait4", "waitid", "exit", "exit_group",
            "set_tid_address", "set_robust_list", "get_robust_list", "rseq", "restart_syscall",
        ],
    },
    Group {
        why: "futexes: the base of every lock and condition variable",
        syscalls: &["futex", "futex_requeue", "futex_wait", "futex_waitv", "futex_wake"],
    },
    Group {
        why: "signals, to the process itself or others of the container (pid namespace)",
        syscalls: &[
            "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "rt_sigpending", "rt_sigsuspend",
            "rt_sigtimedwait", "rt_sigqueueinfo", "rt_tgsigqueueinfo", "sigaltstack", "signalfd",
            "signalfd4", "pause", "kill", "tkill", "tgkill", "pidfd_open", "pidfd_send_signal",
            "process_mrelease",
        ],
    },
    Group {
        why: "clocks and timers; setting the clock needs CAP_SYS_TIME (adjtimex and \
              clock_adjtime only read it without that capability)",
        syscalls: &[
            "clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep", "gettimeofday",
            "time", "alarm", "getitimer", "setitimer", "timer_create", "timer_delete",
            "timer_gettime", "timer_settime", "timer_getoverrun", "timerfd_create",
            "timerfd_gettime", "timerfd_settime", "adjtimex", "clock_adjtime",
        ],
    },
    Group {
        why: "scheduling and CPU affinity of the container's own processes",
        syscalls: &[
            "sched_yield", "sched_getaffinity", "sched_setaffinity", "sched_getattr",
            "sched_setattr", "sched_getparam", "sched_setparam", "sched_getscheduler",
            "sched_setscheduler", "sched_get_priority_max", "sched_get_priority_min",
            "sched_rr_get_interval", "getcpu", "ioprio_get", "ioprio_set", "getpriority",
            "setpriority",
        ],
    },
    Group {
        why: "ids, groups, limits and process attributes; set*id work only within the \
              ids mapped into the container's user namespace",
        syscalls: &[
            "getpid", "getppid", "gettid", "getpgid", "getpgrp", "getsid", "setpgid", "setsid",
            "getuid", "geteuid", "getgid", "getegid", "getresuid", "getresgid", "getgroups",
            "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setgroups",
            "setfsuid", "setfsgid", "capget", "capset", "prctl", "getrlimit", "setrlimit",
            "prlimit64", "getrusage", "times", "uname", "sysinfo",
        ],
    },
    Group {
        why: "random numbers from the kernel (every TLS library, hash seeds)",
        syscalls: &["getrandom"],
    },
    Group {
        why: "sockets (socket itself is a conditional rule below); network access is \
              decided by the container's network namespace",
        syscalls: &[
            "socketpair", "bind", "connect", "listen", "accept", "accept4", "getsockname",
            "getpeername", "getsockopt", "setsockopt", "sendto", "recvfrom", "sendmsg", "recvmsg",
            "sendmmsg", "recvmmsg", "shutdown",
        ],
    },
    Group {
        why: "SysV IPC and POSIX message queues, inside the container's IPC namespace",
        syscalls: &[
            "msgget", "msgsnd", "msgrcv", "msgctl", "semget", "semop", "semtimedop", "semctl",
            "shmget", "shmat", "shmdt", "shmctl", "mq_open", "mq_unlink", "mq_timedsend",
            "mq_timedreceive", "mq_notify", "mq_getsetattr",
        ],
    },
    Group {
        why: "sandboxing oneself further: these can only add restrictions",
        syscalls: &[
            "seccomp", "landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self",
        ],
    },
    Group {
        why: "reading the mount table (statmount/listmount see the container's mount \
              namespace only)",
        syscalls: &["statmount", "listmount"],
    },
];

/// Allowed only on one architecture (Docker's `includes.arches`).
#[rustfmt::skip] // several names a line: easier to review than one a line
pub const X86_64_ONLY: &[Group] = &[
    Group {
        why: "thread-local storage and 16-bit segments (wine, old runtimes)",
        syscalls: &["arch_prctl", "modify_ldt", "get_thread_area", "set_thread_area"],
    },
    Group {
        why: "return probes: the kernel only honours it from its own uprobe trampoline",
        syscalls: &["uretprobe"],
    },
];

/// Allowed only while the container keeps a capability (Docker's
/// `includes.caps`): without the capability the kernel would refuse them
/// anyway, and the filter keeps their code out of reach.
#[rustfmt::skip] // several names a line: easier to review than one a line
pub const BY_CAPABILITY: &[(Capability, Group)] = &[
    (
        Capability::CAP_SYS_ADMIN,
        Group {
            why: "mounts, namespaces, hostname, tracing and BPF: the broad administrative \
                  calls (clone/clone3 with namespace flags included)",
            syscalls: &[
                "mount", "umount2", "mount_setattr", "move_mount", "open_tree", "fsopen",
                "fsconfig", "fsmount", "fspick", "unshare", "setns", "clone", "clone3",
                "sethostname", "setdomainname", "bpf", "perf_event_open", "fanotify_init",
                "lookup_dcookie", "quotactl", "quotactl_fd", "syslog", "lsm_get_self_attr",
                "lsm_set_self_attr", "lsm_list_modules",
            ],
        },
    ),
    (
        Capability::CAP_DAC_READ_SEARCH,
        Group {
            why: "open_by_handle_at opens files by handle, bypassing path checks \
                  (the 2014 \"shocker\" container escape)",
            syscalls: &["open_by_handle_at"],
        },
    ),
    (
        Capability::CAP_SYS_BOOT,
        Group {
            why: "reboot (in a pid namespace it only ends the container)",
            syscalls: &["reboot"],
        },
    ),
    (
        Capability::CAP_SYS_CHROOT,
        Group {
            why: "chroot",
            syscalls: &["chroot"],
        },
    ),
    (
        Capability::CAP_SYS_MODULE,
        Group {
            why: "loading kernel modules",
            syscalls: &["init_module", "finit_module", "delete_module"],
        },
    ),
    (
        Capability::CAP_SYS_PACCT,
        Group {
            why: "process accounting",
            syscalls: &["acct"],
        },
    ),
    (
        Capability::CAP_SYS_PTRACE,
        Group {
            why: "debugging and inspecting other processes. Deliberately stricter than \
                  Docker, which allows ptrace and process_vm_* to everyone since Linux 4.8: \
                  den is safe by default, and strace/gdb need --cap-add SYS_PTRACE",
            syscalls: &[
                "kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev",
                "ptrace",
            ],
        },
    ),
    (
        Capability::CAP_SYS_RAWIO,
        Group {
            why: "raw I/O ports",
            syscalls: &["iopl", "ioperm"],
        },
    ),
    (
        Capability::CAP_SYS_TIME,
        Group {
            why: "setting the system clock (not namespaced)",
            syscalls: &["settimeofday", "clock_settime"],
        },
    ),
    (
        Capability::CAP_SYS_TTY_CONFIG,
        Group {
            why: "hanging up the terminal",
            syscalls: &["vhangup"],
        },
    ),
    (
        Capability::CAP_SYS_NICE,
        Group {
            why: "NUMA memory policy",
            syscalls: &["get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"],
        },
    ),
    (
        Capability::CAP_SYSLOG,
        Group {
            why: "reading the kernel log",
            syscalls: &["syslog"],
        },
    ),
    (
        Capability::CAP_BPF,
        Group {
            why: "BPF programs and maps",
            syscalls: &["bpf"],
        },
    ),
    (
        Capability::CAP_PERFMON,
        Group {
            why: "performance monitoring",
            syscalls: &["perf_event_open"],
        },
    ),
];

/// A comparison on one 32- or 64-bit argument of a system call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgCheck {
    /// `arg == value`
    Eq(u64),
    /// `arg < value` (unsigned)
    Lt(u64),
    /// `arg > value` (unsigned)
    Gt(u64),
    /// `arg & mask == 0`
    NoBitsOf(u64),
    /// `arg` is none of these values (one rule: `arg != a && arg != b ...`)
    NoneOf(&'static [u64]),
}

/// A system call allowed only when an argument passes one of `any_of`.
#[derive(Debug)]
pub struct Conditional {
    pub syscall: &'static str,
    pub why: &'static str,
    /// Argument index (0-based).
    pub arg: u8,
    /// The argument is a C `int`: compare its low 32 bits only, as the kernel
    /// reads it (the upper half of the register is not defined).
    pub is_int: bool,
    pub any_of: &'static [ArgCheck],
    /// The whole system call is allowed when this capability is kept, so the
    /// condition does not apply then (Docker's `excludes.caps`).
    pub unless: Option<Capability>,
}

/// Namespace flags of clone(2): NEWNS 0x20000, NEWCGROUP 0x02000000, NEWUTS,
/// NEWIPC, NEWUSER, NEWPID, NEWNET (0x04000000 to 0x40000000). Docker's mask.
pub const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;

/// `ioctl(fd, TIOCSTI, &c)`: push a byte into a terminal's input, as if
/// typed. On a terminal shared with the user's shell, the shell would run
/// what the container typed.
pub const TIOCSTI: u64 = 0x5412;
/// `ioctl(fd, TIOCLINUX, ...)`: the Linux console's subcommands, among them
/// pasting the selection into the console's input (the same injection).
pub const TIOCLINUX: u64 = 0x541C;

pub const CONDITIONAL: &[Conditional] = &[
    Conditional {
        syscall: "ioctl",
        why: "every request except TIOCSTI and TIOCLINUX, which type into a terminal \
              (refused as bubblewrap and Flatpak do; stricter than Docker). The request \
              is compared as the kernel reads it, a 32-bit unsigned int",
        arg: 1,
        is_int: true,
        any_of: &[ArgCheck::NoneOf(&[TIOCSTI, TIOCLINUX])],
        unless: None,
    },
    Conditional {
        syscall: "personality",
        why: "only the execution domains programs really set: PER_LINUX (0), \
              PER_LINUX32 (8), UNAME26 (0x20000) and the two combined, and the query \
              0xffffffff; others would turn off ASLR (ADDR_NO_RANDOMIZE) and similar",
        arg: 0,
        is_int: true,
        any_of: &[
            ArgCheck::Eq(0x0),
            ArgCheck::Eq(0x8),
            ArgCheck::Eq(0x2_0000),
            ArgCheck::Eq(0x2_0008),
            ArgCheck::Eq(0xffff_ffff),
        ],
        unless: None,
    },
    Conditional {
        syscall: "socket",
        why: "every address family except AF_ALG (38: kernel crypto) and AF_VSOCK \
              (40: talks to the hypervisor, outside any network namespace)",
        arg: 0,
        is_int: true,
        any_of: &[ArgCheck::Lt(38), ArgCheck::Eq(39), ArgCheck::Gt(40)],
        unless: None,
    },
    Conditional {
        syscall: "clone",
        why: "threads and processes, but no new namespaces without CAP_SYS_ADMIN",
        arg: 0,
        is_int: false,
        any_of: &[ArgCheck::NoBitsOf(CLONE_NAMESPACE_FLAGS)],
        unless: Some(Capability::CAP_SYS_ADMIN),
    },
];

/// Calls answered with ENOSYS ("not implemented") instead of EPERM, unless
/// the capability is kept. clone3 passes its flags in memory, which a seccomp
/// filter cannot read, so it cannot be checked like clone; ENOSYS makes glibc
/// (2.34+) and others fall back to clone, whose flags the filter checks.
/// Installed as a second filter, see the seccomp module doc.
pub const ENOSYS_UNLESS: &[(&str, Capability)] = &[("clone3", Capability::CAP_SYS_ADMIN)];
