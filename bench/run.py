#!/usr/bin/env python3
"""Container start-up: `true` in debian:bookworm-slim, interleaved:

  den      den run --rm --network none debian true   (seccomp + landlock on)
  bwrap    bwrap --unshare-all over the same rootfs, unpacked
  crun     crun run of an OCI bundle of the same rootfs (umoci's rootless config)
  podman   rootless podman run --rm --network none

Run as root (it prepares the bench user and starts a registry):

    sudo python3 bench/run.py [-n ROUNDS] [--user den-sub] [--den target/release/den]

Prints interleave.py's table (median/p10/p90 ms) and den's ratios.
"""
import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import HERE, REGISTRY, SHARED, as_user, prepare_home, sh, start_registry, stop_registry, user_env  # noqa: E402

IMAGE = f"{REGISTRY}/library/debian:bookworm-slim"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=30)
    ap.add_argument("--user", default="den-sub")
    ap.add_argument("--den", default=os.path.join(HERE, "..", "target", "release", "den"))
    ap.add_argument("--network", default="none", help="none, or default: den's private network against podman's default (slirp4netns)")
    a = ap.parse_args()
    home = f"/tmp/den-runbench-{a.user}"
    start_registry()
    try:
        prepare_home(a.user, home, a.den)
        steps = [
            f"{home}/den pull -q {IMAGE}",
            f"podman pull -q --tls-verify=false {IMAGE}",
            f"skopeo copy -q --src-tls-verify=false docker://{IMAGE} oci:{home}/oci:debian",
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
        env = user_env(a.user, home)
        wrap = lambda cmd: f"runuser -u {a.user} -- {env} {cmd}"  # noqa: E731
        # crun 1.8 refuses this host's hybrid cgroup hierarchy; runc runs.
        runtime = "crun"
        if as_user(a.user, home, f"crun --root {home}/run/crun run --bundle {home}/bundle probe", check=False).returncode != 0:
            runtime = "runc"
            print("crun cannot run here (hybrid cgroups): using runc for the bundle and for podman")
        cmds = {
            "den": wrap(f"{home}/den run --rm --network {'none' if a.network == 'none' else 'private'} {IMAGE} true"),
            "bwrap": wrap(f"bwrap --unshare-all --die-with-parent --bind {home}/bundle/rootfs / --proc /proc --dev /dev true"),
            "podman": wrap(f"podman --runtime {runtime} --cgroup-manager=cgroupfs run --rm {'--network none ' if a.network == 'none' else ''}{IMAGE} true"),
            "baseline-runuser": wrap("true"),
        }
        cmds[runtime] = wrap(f"sh -c '{runtime} --root {home}/run/{runtime} run --bundle {home}/bundle b$$'")
        out = f"{home}/run.json"
        args = [sys.executable, f"{SHARED}/bench/interleave.py", "-n", str(a.n), "-w", "3", "--json", out]
        args += [f"{k}={v}" for k, v in cmds.items()]
        subprocess.run(args, check=True)
        med = {k: v["stats"]["median"] for k, v in json.load(open(out)).items()}
        base = med.pop("baseline-runuser")
        print(f"\nrunuser+env alone: {base:.1f} ms (included in every figure above)")
        for peer in ["bwrap", runtime, "podman"]:
            print(f"den / {peer}: {med['den'] / med[peer]:.2f}x   (minus runuser: {(med['den'] - base) / (med[peer] - base):.2f}x)")
    finally:
        as_user(a.user, home, "podman rmi -a -f >/dev/null 2>&1; true", check=False)
        stop_registry()


if __name__ == "__main__":
    main()
