#!/usr/bin/env python3
"""Memory of den's networking for 1 and 10 running containers: on one user
network (its infra process and its one pasta) against the default private
network (one pasta per container). Total PSS from /proc/PID/smaps_rollup.

    sudo python3 bench/netmem.py [--user den-sub]
"""
import argparse
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import HERE, home_for, REGISTRY, as_user, prepare_home, start_registry, stop_registry  # noqa: E402

IMAGE = f"{REGISTRY}/library/busybox:latest"


def pss(pids):
    total = 0
    for pid in pids:
        try:
            total += sum(int(l.split()[1]) for l in open(f"/proc/{pid}/smaps_rollup") if l.startswith("Pss:"))
        except OSError:
            pass
    return total


def helpers(user):
    out = subprocess.run(["pgrep", "-u", user, "-f", "pasta|network-infra"], stdout=subprocess.PIPE, text=True).stdout
    return [int(p) for p in out.split()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--user", default="den-sub")
    ap.add_argument("--den", default=os.path.join(HERE, "..", "target", "release", "den"))
    a = ap.parse_args()
    home = home_for("netmem", a.user)
    start_registry()
    try:
        prepare_home(a.user, home, a.den)
        den = f"{home}/den"
        as_user(a.user, home, f"{den} pull -q {IMAGE} && {den} network create bench")
        for mode, net in [("user network", "bench"), ("private (one pasta each)", "private")]:
            for n in (1, 10):
                for i in range(n):
                    as_user(a.user, home, f"{den} run -d --name m{i} --network {net} {IMAGE} sleep 1000")
                time.sleep(1)
                hs = helpers(a.user)
                print(f"{mode:28} {n:2} containers: {len(hs):2} helper processes, {pss(hs) / 1024:6.1f} MiB PSS", flush=True)
                as_user(a.user, home, f"{den} rm -f " + " ".join(f"m{i}" for i in range(n)))
                time.sleep(0.5)
    finally:
        as_user(a.user, home, f"{home}/den rm -f $({home}/den ps -aq) >/dev/null 2>&1; true", check=False)
        stop_registry()


if __name__ == "__main__":
    main()
