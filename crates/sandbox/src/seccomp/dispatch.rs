//! A binary search on the system call number, in front of seccompiler.
//!
//! seccompiler compiles an allow-list as one linear chain: a call is
//! compared with every listed number in turn. When the kernel installs a
//! filter it runs it once for every system call number, to find the calls
//! it may then allow without running it (`seccomp_cache_prepare`). With a
//! chain of about 1,600 instructions that cost about 1 ms of every
//! container's start, and each call the container made walked the chain up
//! to its number.
//!
//! [`dispatch`] emits a binary search over ranges of numbers with one
//! answer each instead. A call allowed whatever its arguments returns ALLOW,
//! a number not listed returns the mismatch action (so do the x32 numbers,
//! bit 30 set, above every listed one), and the few calls whose arguments
//! are checked jump into seccompiler's filter of those calls alone, which
//! checks them as before:
//!
//! ```text
//! ld arch; jeq ARCH ? next : ret KILL_PROCESS      (as seccompiler's)
//! ld nr
//! node: jge PIVOT ? ja RIGHT : LEFT                (2 instructions; RIGHT
//!                                                   by a 32-bit jump)
//! leaf: ret ALLOW | ret MISMATCH | ja CHECKED
//! CHECKED: seccompiler's filter of the argument-checked calls
//! ```

use std::collections::BTreeSet;

use seccompiler::{BpfProgram, sock_filter};

// Classic BPF opcodes (linux/bpf_common.h) and `struct seccomp_data` offsets.
const LD_W_ABS: u16 = 0x20;
const JMP_JA: u16 = 0x05;
const JMP_JEQ_K: u16 = 0x15;
const JMP_JGE_K: u16 = 0x35;
const RET_K: u16 = 0x06;
const NR_OFFSET: u32 = 0;
const ARCH_OFFSET: u32 = 4;
const RET_ALLOW: u32 = 0x7fff_0000;
const RET_KILL_PROCESS: u32 = 0x8000_0000;

/// What the filter answers a range of numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Allow,
    Mismatch,
    Checked,
}

/// The filter for `audit_arch`: `allowed` numbers whatever the arguments,
/// `checked` (seccompiler's program for exactly the `checked_nrs`, with
/// the same mismatch action) for those, `mismatch` (a `SECCOMP_RET_*`
/// value) for every other number.
pub(super) fn dispatch(
    audit_arch: u32,
    allowed: &BTreeSet<u32>,
    checked: Option<(&BTreeSet<u32>, BpfProgram)>,
    mismatch: u32,
) -> BpfProgram {
    let checked_nrs = checked.as_ref().map(|(n, _)| *n);
    let mut out = vec![
        stmt(LD_W_ABS, ARCH_OFFSET),
        jump(JMP_JEQ_K, audit_arch, 1, 0),
        stmt(RET_K, RET_KILL_PROCESS),
        stmt(LD_W_ABS, NR_OFFSET),
    ];
    let mut to_checked = Vec::new();
    search(
        &runs(allowed, checked_nrs),
        mismatch,
        &mut out,
        &mut to_checked,
    );
    if let Some((_, program)) = checked {
        let start = out.len();
        for at in to_checked {
            out[at].k = (start - at - 1) as u32;
        }
        out.extend(program);
    }
    out
}

/// The numbers from 0 up in ranges of one answer: (first number, answer);
/// the last range (every number above the listed ones) runs to the end.
fn runs(allowed: &BTreeSet<u32>, checked: Option<&BTreeSet<u32>>) -> Vec<(u32, Answer)> {
    let answer = |nr: u32| match () {
        _ if checked.is_some_and(|c| c.contains(&nr)) => Answer::Checked,
        _ if allowed.contains(&nr) => Answer::Allow,
        _ => Answer::Mismatch,
    };
    let last = allowed
        .iter()
        .chain(checked.into_iter().flatten())
        .max()
        .copied()
        .unwrap_or(0);
    let mut runs: Vec<(u32, Answer)> = Vec::new();
    for nr in 0..=last.saturating_add(1) {
        let a = answer(nr);
        if runs.last().is_none_or(|&(_, prev)| prev != a) {
            runs.push((nr, a));
        }
    }
    runs
}

/// Emits the search over `runs` (sorted, non-empty): a node per split, a
/// leaf per run. A `Checked` leaf is a jump whose offset is filled in once
/// the checked program's place is known; its index goes to `to_checked`.
fn search(
    runs: &[(u32, Answer)],
    mismatch: u32,
    out: &mut Vec<sock_filter>,
    to_checked: &mut Vec<usize>,
) {
    if let [(_, answer)] = runs {
        if *answer == Answer::Checked {
            to_checked.push(out.len());
        }
        out.push(match answer {
            Answer::Allow => stmt(RET_K, RET_ALLOW),
            Answer::Mismatch => stmt(RET_K, mismatch),
            Answer::Checked => stmt(JMP_JA, 0),
        });
        return;
    }
    let mid = runs.len() / 2;
    // nr >= pivot: the next instruction, a jump to the right half; else
    // skip it into the left half.
    out.push(jump(JMP_JGE_K, runs[mid].0, 0, 1));
    let to_right = out.len();
    out.push(stmt(JMP_JA, 0));
    search(&runs[..mid], mismatch, out, to_checked);
    out[to_right].k = (out.len() - to_right - 1) as u32;
    search(&runs[mid..], mismatch, out, to_checked);
}

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}
