#!/usr/bin/env python3
"""50 detached `sleep infinity` containers, one by one: `run -d` each, one `ps`,
`rm -f` each; den against rootless podman, in alternating rounds; and the
memory (PSS) den keeps per container (supervisor and guard) against podman's
conmon, measured while all 50 run.

    sudo python3 bench/lifecycle.py [--rounds 3] [-n 50] [--user den-sub] [--den target/release/den]

Needs: apt-get install -y podman crun runc uidmap docker-registry skopeo
The commands run as the bench user through bench/timer.py --lifecycle (no
runuser or shell per command). Only the bench user's processes under the bench
home are measured, and the benchmark ends only the containers it made.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import HERE, home_for, REGISTRY, as_user, need_tools, prepare_home, start_registry, stop_registry, user_env  # noqa: E402

IMAGE = f"{REGISTRY}/library/busybox:latest"


def pss_of(uid, needle, pick):
    """(count, total PSS KiB) of `uid`'s processes whose command line contains
    `needle` and for which pick(pid, ppid, cmdline) holds."""
    count = total = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.stat(f"/proc/{pid}").st_uid != uid:
                continue
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
            ppid = int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1])
            if needle not in cmd or not pick(int(pid), ppid, cmd):
                continue
            for line in open(f"/proc/{pid}/smaps_rollup"):
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
                    count += 1
        except (OSError, ValueError, IndexError):
            pass
    return count, total


def exe_of(pid):
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None


def memory(tool, uid, home):
    if tool in ("den", "old-den"):
        # supervisors and their guards: den's processes outside the containers
        # (`den __internal container ID`, forked by `den run -d`, or executed),
        # of this bench's binary only (the user's other dens are not counted)
        exe = f"{home}/den" if tool == "den" else f"{home}/den-old"
        return pss_of(uid, "__internal container", lambda pid, ppid, cmd: exe_of(pid) == exe)
    return pss_of(uid, "conmon", lambda pid, ppid, cmd: cmd.startswith("/usr/bin/conmon") or cmd.startswith("conmon"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("-n", type=int, default=50)
    ap.add_argument("--user", default="den-sub")
    ap.add_argument("--den", default=os.path.join(HERE, "..", "target", "release", "den"))
    ap.add_argument("--old", help="another den binary (e.g. before a change), measured in the same rounds as old-den")
    a = ap.parse_args()
    need_tools(["podman", "newuidmap", "docker-registry", "skopeo"])
    home = home_for("lcbench", a.user)
    uid = int(subprocess.run(["id", "-u", a.user], stdout=subprocess.PIPE, text=True, check=True).stdout)
    start_registry()
    try:
        prepare_home(a.user, home, a.den)
        den = f"{home}/den"
        if a.old:
            shutil.copy(a.old, f"{home}/den-old")
            os.chmod(f"{home}/den-old", 0o755)
        for s in [f"{den} pull -q {IMAGE}", f"podman pull -q --tls-verify=false {IMAGE}"]:
            p = as_user(a.user, home, s, check=False)
            if p.returncode:
                sys.exit(p.stderr.decode())
        pod = "podman --runtime runc --cgroup-manager=cgroupfs".split()
        dens = {"den": den, **({"old-den": f"{home}/den-old"} if a.old else {})}
        plan = {"rounds": a.rounds, "n": a.n, "tools": {
            **{t: {"run": [d, "run", "-d", "--network", "none", "--name", "b{i}", IMAGE, "sleep", "infinity"],
                   "ps": [d, "ps", "-q"], "rm": [d, "rm", "-f", "b{i}"]} for t, d in dens.items()},
            "podman": {"run": pod + ["run", "-d", "--network", "none", "--name", "b{i}", IMAGE, "sleep", "infinity"],
                       "ps": pod + ["ps", "-q"], "rm": pod + ["rm", "-f", "-t", "0", "b{i}"]},
        }}
        with open(f"{home}/lifecycle.json", "w") as f:
            json.dump(plan, f)
        shutil.copy(os.path.join(HERE, "timer.py"), f"{home}/timer.py")
        p = subprocess.Popen(f"runuser -u {a.user} -- {user_env(a.user, home)} python3 {home}/timer.py "
                             f"--lifecycle {home}/lifecycle.json", shell=True, cwd=home, text=True,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        mem = {}
        for line in p.stderr:
            if not line.startswith("hold "):
                sys.stderr.write(line)
                continue
            tool = line.split()[1]
            mem[tool] = memory(tool, uid, home)
            p.stdin.write("go\n")
            p.stdin.flush()
        out, _ = p.communicate()
        if p.returncode:
            sys.exit("the benchmark failed (see above)")
        times = json.loads(out)
        total = {t: statistics.median(r + q + m for r, q, m in zip(v["run"], v["ps"], v["rm"])) for t, v in times.items()}
        print(f"{a.n} containers one by one, median of {a.rounds} rounds (s):")
        print(f"{'':8} {'run -d':>8} {'ps':>8} {'rm -f':>8} {'total':>8}")
        for t, v in times.items():
            print(f"{t:8} {statistics.median(v['run']):8.2f} {statistics.median(v['ps']):8.3f} "
                  f"{statistics.median(v['rm']):8.2f} {total[t]:8.2f}")
        print(f"den / podman: {total['den'] / total['podman']:.3f}x")
        if "old-den" in total:
            print(f"old-den / podman: {total['old-den'] / total['podman']:.3f}x")
            print(f"den / old-den: {total['den'] / total['old-den']:.3f}x")
        for t, (count, kib) in mem.items():
            print(f"{t}: {count} processes besides the containers' own, PSS {kib / 1024:.1f} MiB, "
                  f"{kib / a.n:.0f} KiB per container")
    finally:
        as_user(a.user, home, f"for i in $(seq {a.n}); do {home}/den rm -f b$i; done >/dev/null 2>&1; "
                "podman rm -af -t 0 >/dev/null 2>&1; podman rmi -a -f >/dev/null 2>&1; true", check=False)
        stop_registry()


if __name__ == "__main__":
    main()
