#!/usr/bin/env python3
"""Container start-up and the detached lifecycle, den against its peers,
interleaved in one run (issue 9's table):

  den          den run --rm --network none debian true  (multi-id userns, seccomp, landlock)
  den-single   the same with DEN_USERNS=single (no newuidmap/newgidmap)
  den-rootfs   den run --rm --network none --rootfs / true
  den-run-d    den run -d --network none busybox sleep infinity, then
  den-rm-f     den rm -f of that container
  bwrap-host   bwrap --unshare-all --ro-bind / / --proc /proc --dev /dev true
  bwrap-image  bwrap --unshare-all over debian's rootfs, unpacked
  crun/runc    `run` of an OCI bundle of the same rootfs (umoci's rootless config)
  podman       rootless podman run --rm --network none debian true
  podman-run-d / podman-rm-f   as den's, with `rm -f -t 0`
  old-*        with --old BIN: den's commands again with another binary, same rounds,
               in a den root of its own (`--root`): two dens never share a keeper,
               whose protocol may differ between them

Run as root (it prepares the bench user's home and starts a loopback registry);
the commands then run as the bench user, each timed as a whole process
(bench/timer.py: no runuser or shell per run), like `hyperfine -N`:

    sudo python3 bench/run.py [-n ROUNDS] [--user den-sub] [--den target/release/den] [--only den,bwrap-host] [--gap MS]

--gap MS leaves MS of idle time after each command (not timed), as between a
user's commands: work a tool leaves in the background (den's keeper making
the next run's spares) then runs between commands, not in the next one.

Needs: apt-get install -y podman bubblewrap crun runc umoci skopeo uidmap passt docker-registry
Prints median/p10/p90 ms per command and den's ratios; --json FILE keeps the samples.
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

DEBIAN = f"{REGISTRY}/library/debian:bookworm-slim"
OLD_DEN = "{home}/den-old --root {home}/.local/share/den-old"
BUSYBOX = f"{REGISTRY}/library/busybox:latest"


def pct(xs, p):
    xs = sorted(xs)
    k = (len(xs) - 1) * p
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def prepare(a, home):
    """Images for den and podman, and an OCI bundle for bwrap and crun."""
    steps = [
        f"{home}/den pull -q {DEBIAN}",
        f"{home}/den pull -q {BUSYBOX}",
        *([f"{OLD_DEN.format(home=home)} pull -q {img}" for img in (DEBIAN, BUSYBOX)] if a.old else []),
        f"podman pull -q --tls-verify=false {DEBIAN}",
        f"podman pull -q --tls-verify=false {BUSYBOX}",
        f"skopeo copy -q --src-tls-verify=false docker://{DEBIAN} oci:{home}/oci:debian",
        f"umoci unpack --rootless --image {home}/oci:debian {home}/bundle",
    ]
    for s in steps:
        p = as_user(a.user, home, s, check=False)
        if p.returncode != 0:
            sys.exit(f"{s}: {p.stderr.decode()[-500:]}")
    cfg_path = f"{home}/bundle/config.json"
    cfg = json.load(open(cfg_path))
    cfg["process"]["args"], cfg["process"]["terminal"] = ["true"], False
    json.dump(cfg, open(cfg_path, "w"))
    # crun 1.8 refuses this host's hybrid cgroup hierarchy; runc runs.
    for runtime in ["crun", "runc"]:
        if shutil.which(runtime) and as_user(
                a.user, home, f"{runtime} --root {home}/run/{runtime} run --bundle {home}/bundle probe",
                check=False).returncode == 0:
            return runtime
    print("neither crun nor runc can run the bundle here: left out")
    return None


def den_groups(den, p, net):
    """den's commands with binary `den`, named with prefix `p` ("" or "old-")."""
    step = lambda name, cmd, env=None: {"name": p + name, "argv": cmd.split(), "env": env or {}}  # noqa: E731
    return {
        p + "den": [step("den", f"{den} run --rm --network {net} {DEBIAN} true")],
        p + "den-single": [step("den-single", f"{den} run --rm --network {net} {DEBIAN} true", {"DEN_USERNS": "single"})],
        p + "den-rootfs": [step("den-rootfs", f"{den} run --rm --network {net} --rootfs / true")],
        p + "den-detached": [step("den-run-d", f"{den} run -d --network none --name bench {BUSYBOX} sleep infinity"),
                             step("den-rm-f", f"{den} rm -f bench")],
    }


def groups(a, home, runtime):
    step = lambda name, cmd, env=None: {"name": name, "argv": cmd.split(), "env": env or {}}  # noqa: E731
    g = {"spawn-true": [step("spawn-true", "true")]}
    net = "none" if a.network == "none" else "private"
    g.update(den_groups(f"{home}/den", "", net))
    if a.old:
        g.update(den_groups(OLD_DEN.format(home=home), "old-", net))
    g.update({
        "bwrap-host": [step("bwrap-host", "bwrap --unshare-all --ro-bind / / --proc /proc --dev /dev true")],
        "bwrap-image": [step("bwrap-image", f"bwrap --unshare-all --die-with-parent --bind {home}/bundle/rootfs / --proc /proc --dev /dev true")],
    })
    if runtime:
        # a fixed container name: each run ends (and is deleted) before the next
        g[runtime] = [step(runtime, f"{runtime} --root {home}/run/{runtime} run --bundle {home}/bundle bench")]
    pod = f"podman --runtime {runtime or 'crun'} --cgroup-manager=cgroupfs"
    podnet = "--network none " if a.network == "none" else ""
    g["podman"] = [step("podman", f"{pod} run --rm {podnet}{DEBIAN} true")]
    g["podman-detached"] = [step("podman-run-d", f"{pod} run -d --network none --name bench {BUSYBOX} sleep infinity"),
                            step("podman-rm-f", f"{pod} rm -f -t 0 bench")]
    if a.only:
        keep = set(a.only.split(","))
        g = {k: v for k, v in g.items() if k.removeprefix("old-") in keep or k == "spawn-true"}
    return g


def report(samples, runtime):
    print(f"{'command':14} {'median':>8} {'p10':>8} {'p90':>8}   (ms, n={len(next(iter(samples.values())))})")
    med = {}
    for name, xs in samples.items():
        med[name] = statistics.median(xs)
        print(f"{name:14} {med[name]:8.1f} {pct(xs, .1):8.1f} {pct(xs, .9):8.1f}")
    print()
    ratio = lambda x, y: print(f"{x} / {y}: {med[x] / med[y]:.2f}x") if x in med and y in med else None  # noqa: E731
    for peer in ["bwrap-host", "bwrap-image", runtime, "podman"]:
        ratio("den", peer)
    ratio("den-rootfs", "den")
    ratio("den-run-d", "den")
    ratio("den-run-d", "podman-run-d")
    ratio("den-rm-f", "podman-rm-f")
    for name in ["den", "den-single", "den-rootfs", "den-run-d", "den-rm-f"]:
        ratio(name, "old-" + name)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=30)
    ap.add_argument("--user", default="den-sub")
    ap.add_argument("--den", default=os.path.join(HERE, "..", "target", "release", "den"))
    ap.add_argument("--network", default="none",
                    help="none, or default: den's private network (pasta) against podman's default (slirp4netns)")
    ap.add_argument("--old", help="another den binary (e.g. before a change), measured in the same rounds as old-*")
    ap.add_argument("--only", help="comma-separated groups (den, den-single, den-rootfs, den-detached, bwrap-host, ...)")
    ap.add_argument("--json", help="write the raw samples here")
    ap.add_argument("--gap", type=float, default=0, help="idle ms after each command (not timed)")
    a = ap.parse_args()
    need_tools(["podman", "bwrap", "skopeo", "umoci", "newuidmap", "docker-registry"])
    home = home_for("runbench", a.user)
    start_registry()
    try:
        prepare_home(a.user, home, a.den)
        if a.old:
            shutil.copy(a.old, f"{home}/den-old")
            os.chmod(f"{home}/den-old", 0o755)
        runtime = prepare(a, home)
        plan = {"rounds": a.n, "warmup": 3, "gap_ms": a.gap, "groups": groups(a, home, runtime)}
        with open(f"{home}/plan.json", "w") as f:
            json.dump(plan, f)
        shutil.copy(os.path.join(HERE, "timer.py"), f"{home}/timer.py")
        p = subprocess.run(f"runuser -u {a.user} -- {user_env(a.user, home)} python3 {home}/timer.py {home}/plan.json",
                           shell=True, stdout=subprocess.PIPE, cwd=home)
        if p.returncode:
            sys.exit("the benchmark failed (see above)")
        samples = json.loads(p.stdout)
        if a.json:
            with open(a.json, "w") as f:
                json.dump(samples, f)
        report(samples, runtime)
    finally:
        as_user(a.user, home, f"{home}/den rm -f bench >/dev/null 2>&1; {OLD_DEN.format(home=home)} rm -f bench >/dev/null 2>&1; podman rm -af -t 0 >/dev/null 2>&1; "
                "podman rmi -a -f >/dev/null 2>&1; true", check=False)
        stop_registry()


if __name__ == "__main__":
    main()
