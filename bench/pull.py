#!/usr/bin/env python3
"""Cold pull of python:3.11-slim from a loopback registry, interleaved:

  den           den pull (download + unpack into its store)
  podman        rootless `podman pull` with overlay storage
  skopeo+umoci  `skopeo copy` to an OCI layout + `umoci unpack --rootless`
  floor         GNU tar -xzf of the same two layer blobs, one after the other

Run as root (it sets up the bench user's podman and starts its own registry):

    sudo python3 bench/pull.py [--rounds N] [--den PATH] [--user den-sub]

Every round removes what the previous round stored (not timed), then times
each tool once, in an order reversed every other round. Prints the median,
p10 and p90 per tool and den's ratios to the others.
"""
import argparse
import json
import os
import pwd
import shutil
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import HERE, home_for, REGISTRY, as_user, prepare_home, sh, start_registry, stop_registry  # noqa: E402

IMAGE = f"{REGISTRY}/library/python:3.11-slim"


def prepare(user, den_src):
    home = home_for("pullbench", user)
    prepare_home(user, home, den_src)
    return home


def tools(home):
    oci = f"{home}/oci"
    return {
        "den": (f"{home}/den unshare rm -rf {home}/den-store; true",
                f"{home}/den --root {home}/den-store pull -q {IMAGE}"),
        "podman": ("podman rmi -a -f >/dev/null 2>&1; true",
                   f"podman pull -q --tls-verify=false {IMAGE}"),
        "skopeo+umoci": (f"rm -rf {oci} {home}/bundle",
                         f"skopeo copy -q --src-tls-verify=false docker://{IMAGE} oci:{oci}:python && "
                         f"umoci unpack --rootless --image {oci}:python {home}/bundle"),
        "floor": (f"rm -rf {home}/floor && mkdir {home}/floor",
                  f"for d in $(cat {home}/layers); do tar -xzf {home}/blobs/$d -C {home}/floor --no-same-owner 2>/dev/null || true; done"),
    }


def floor_inputs(user, home):
    """The two layer blobs of the image, for the floor (fetched once, untimed)."""
    as_user(user, home, f"skopeo copy -q --src-tls-verify=false docker://{IMAGE} oci:{home}/floor-oci:python")
    idx = json.load(open(f"{home}/floor-oci/index.json"))
    man = json.load(open(f"{home}/floor-oci/blobs/sha256/" + idx["manifests"][0]["digest"][7:]))
    os.makedirs(f"{home}/blobs", exist_ok=True)
    names = []
    for l in man["layers"]:
        h = l["digest"][7:]
        shutil.copy(f"{home}/floor-oci/blobs/sha256/{h}", f"{home}/blobs/{h}")
        names.append(h)
    with open(f"{home}/layers", "w") as f:
        f.write(" ".join(names))
    pw = pwd.getpwnam(user)
    sh(f"chown -R {pw.pw_uid}:{pw.pw_gid} {home}/blobs {home}/layers")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--den", default=os.path.join(HERE, "..", "target", "release", "den"))
    ap.add_argument("--user", default="den-sub")
    ap.add_argument("--skip", default="", help="comma-separated tools to leave out")
    a = ap.parse_args()
    start_registry()
    try:
        home = prepare(a.user, a.den)
        floor_inputs(a.user, home)
        ts = {k: v for k, v in tools(home).items() if k not in a.skip.split(",")}
        samples = {k: [] for k in ts}
        names = list(ts)
        for r in range(a.rounds):
            for name in (names if r % 2 == 0 else names[::-1]):
                clean, run = ts[name]
                as_user(a.user, home, clean, check=False)
                sh("sync")
                t = time.perf_counter()
                p = as_user(a.user, home, run, check=False)
                dt = time.perf_counter() - t
                if p.returncode != 0:
                    sys.exit(f"{name} failed: {p.stderr.decode()[-600:]}")
                samples[name].append(dt)
            print(f"round {r + 1}: " + "  ".join(f"{n} {samples[n][-1]:.2f}s" for n in names), flush=True)
        med = {n: statistics.median(xs) for n, xs in samples.items()}
        print(f"\n{'tool':14} {'median':>8} {'p10':>8} {'p90':>8}   (s, {a.rounds} rounds, interleaved)")
        for n, xs in samples.items():
            q = statistics.quantiles(xs, n=10) if len(xs) > 1 else [xs[0]] * 9
            print(f"{n:14} {med[n]:8.2f} {q[0]:8.2f} {q[-1]:8.2f}")
        for other in names[1:]:
            print(f"den / {other}: {med['den'] / med[other]:.2f}x")
    finally:
        stop_registry()
        as_user(a.user, home_for("pullbench", a.user), "podman rmi -a -f >/dev/null 2>&1; true", check=False)


if __name__ == "__main__":
    main()
