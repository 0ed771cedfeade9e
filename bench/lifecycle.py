#!/usr/bin/env python3
"""50 detached `sleep infinity` containers: start them, list them, stop and
remove them, interleaved rounds of den and rootless podman; and the memory
(PSS) of den's per-container supervisors against podman's conmon.

    sudo python3 bench/lifecycle.py [--rounds 3] [-n 50] [--user den-sub]
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import HERE, REGISTRY, as_user, prepare_home, start_registry, stop_registry  # noqa: E402

IMAGE = f"{REGISTRY}/library/busybox:latest"


def pss_kib(pids):
    total = 0
    for pid in pids:
        try:
            for line in open(f"/proc/{pid}/smaps_rollup"):
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def pids_of(pattern):
    out = subprocess.run(["pgrep", "-f", pattern], stdout=subprocess.PIPE, text=True).stdout
    return [int(p) for p in out.split()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("-n", type=int, default=50)
    ap.add_argument("--user", default="den-sub")
    ap.add_argument("--den", default=os.path.join(HERE, "..", "target", "release", "den"))
    a = ap.parse_args()
    home = f"/tmp/den-lcbench-{a.user}"
    start_registry()
    try:
        prepare_home(a.user, home, a.den)
        den, n = f"{home}/den", a.n
        for s in [f"{den} pull -q {IMAGE}", f"podman pull -q --tls-verify=false {IMAGE}"]:
            p = as_user(a.user, home, s, check=False)
            if p.returncode:
                sys.exit(p.stderr.decode())
        pod = "podman --runtime runc --cgroup-manager=cgroupfs"
        tools = {
            "den": (f"for i in $(seq {n}); do {den} run -d --network none --name b$i {IMAGE} sleep infinity >/dev/null || exit 1; done",
                    f"{den} ps -q | wc -l",
                    f"{den} stop -t 1 $({den} ps -q) >/dev/null && {den} rm $({den} ps -aq) >/dev/null"),
            "podman": (f"for i in $(seq {n}); do {pod} run -d --network none --name b$i {IMAGE} sleep infinity >/dev/null || exit 1; done",
                       f"{pod} ps -q | wc -l",
                       f"{pod} stop -t 1 $({pod} ps -q) >/dev/null && {pod} rm $({pod} ps -aq) >/dev/null"),
        }
        times = {k: [] for k in tools}
        memory = {}
        for r in range(a.rounds):
            for name in (list(tools) if r % 2 == 0 else list(tools)[::-1]):
                start, ls, stop = tools[name]
                t = time.perf_counter()
                for step in (start, ls):
                    p = as_user(a.user, home, step, check=False)
                    if p.returncode:
                        sys.exit(f"{name}: {step}: {p.stderr.decode()[-400:]}")
                count = int(p.stdout.decode().strip() or 0)
                if r == 0:
                    pat = f"{home}/.local/share/den __internal container" if name == "den" else "conmon"
                    pids = pids_of(pat)
                    memory[name] = (len(pids), pss_kib(pids))
                p = as_user(a.user, home, stop, check=False)
                if p.returncode:
                    sys.exit(f"{name}: stop/rm: {p.stderr.decode()[-400:]}")
                times[name].append(time.perf_counter() - t)
                assert count == n, f"{name} listed {count} containers"
            print(f"round {r + 1}: " + "  ".join(f"{k} {v[-1]:.2f}s" for k, v in times.items()), flush=True)
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"\nstart {n} + list + stop + rm, median of {a.rounds}: den {med['den']:.2f}s, podman {med['podman']:.2f}s, ratio {med['den'] / med['podman']:.2f}x")
        for k, (count, kib) in memory.items():
            print(f"{k}: {count} supervisor processes, total PSS {kib / 1024:.1f} MiB, {kib / max(count, 1):.0f} KiB each")
    finally:
        as_user(a.user, home, "podman rm -af >/dev/null 2>&1; podman rmi -a -f >/dev/null 2>&1; true", check=False)
        stop_registry()


if __name__ == "__main__":
    main()
