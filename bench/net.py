#!/usr/bin/env python3
"""Networking: iperf3 through a published port (host -> container), and
container start-up on the default network, interleaved:

  den        den run --rootfs / -p 127.0.0.1:P:5201 (den's private network: pasta
             owned by the supervisor)
  pasta      pasta attached by hand to a user+net namespace (`unshare -Urn`)
  podman     rootless podman --rootfs / -p P:5201 (slirp4netns + rootlessport)
  loopback   iperf3 on the host's loopback

    sudo python3 bench/net.py [--rounds 3] [--user den-sub]

iperf3 comes from the host (Debian package iperf3), copied with its
libraries into a small directory the containers run with --rootfs.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import HERE, home_for, REGISTRY, SHARED, as_user, prepare_home, start_registry, stop_registry, user_env  # noqa: E402


def iperf(port, reverse=False):
    for _ in range(40):
        p = subprocess.run(["iperf3", "-c", "127.0.0.1", "-p", str(port), "-t", "4", "-J"] + (["-R"] if reverse else []),
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            return json.loads(p.stdout)["end"]["sum_received"]["bits_per_second"] / 1e9
        except (ValueError, KeyError):
            pass  # not ready yet (a forwarder may accept before the server listens)
        time.sleep(0.25)
    raise SystemExit(f"iperf3 to port {port} never connected")


def kill_pidfile(path):
    """Ends the process whose pid PATH holds (pasta writes it with -P)."""
    try:
        os.kill(int(open(path).read().strip()), 9)
    except (OSError, ValueError):
        pass


def wait_port_free(port, timeout=10.0):
    """Waits until nothing listens on 127.0.0.1:PORT, so rounds do not overlap."""
    import socket
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"port {port} still in use after a round: a process this benchmark started did not end")


def make_rootfs(home):
    """A directory with iperf3 and the libraries it links, for the containers."""
    root = f"{home}/iperf-rootfs"
    subprocess.run(f"rm -rf {root} && mkdir -p {root}/usr/bin {root}/etc {root}/run {root}/tmp {root}/proc {root}/sys {root}/dev", shell=True, check=True)
    libs = subprocess.run("ldd /usr/bin/iperf3", shell=True, stdout=subprocess.PIPE, text=True, check=True).stdout
    paths = ["/usr/bin/iperf3"] + [w for line in libs.splitlines() for w in line.split() if w.startswith("/")]
    for p in paths:
        subprocess.run(["cp", "--parents", "-L", p, root], check=True)
    subprocess.run(f"chmod -R a+rX {root} && chmod 1777 {root}/tmp", shell=True, check=True)
    return root


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--user", default="den-sub")
    ap.add_argument("--den", default=os.path.join(HERE, "..", "target", "release", "den"))
    a = ap.parse_args()
    home = home_for("netbench", a.user)
    prepare_home(a.user, home, a.den)
    env = user_env(a.user, home)
    den = f"{home}/den"
    port = 15201
    rootfs = make_rootfs(home)
    pasta_pid = f"{home}/pasta.pid"
    subprocess.run(["chown", "-R", f"{a.user}:", rootfs], check=True)

    def user_bg(cmd):
        return subprocess.Popen(f"runuser -u {a.user} -- {env} {cmd}", shell=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    setups = {
        "den": (lambda: user_bg(f"{den} run --rm --name ip -p 127.0.0.1:{port}:5201 --rootfs {rootfs} iperf3 -s"),
                lambda p: as_user(a.user, home, f"{den} rm -f ip", check=False)),
        "pasta": (lambda: user_bg(f"sh -c 'unshare -Urn iperf3 -s & sleep 0.3; pasta --config-net -P {pasta_pid} -t {port}:5201 -u none -T none -U none $! ; wait'"),
                  lambda p: kill_pidfile(pasta_pid)),
        "podman": (lambda: user_bg(f"podman --runtime runc --cgroup-manager=cgroupfs run --rm --name ip -p 127.0.0.1:{port}:5201 --rootfs {rootfs} iperf3 -s"),
                   lambda p: as_user(a.user, home, "podman --runtime runc rm -f ip", check=False)),
        "loopback": (lambda: subprocess.Popen(["iperf3", "-s", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True), None),
    }
    results = {k: [] for k in setups}
    for r in range(a.rounds):
        for name in (list(setups) if r % 2 == 0 else list(setups)[::-1]):
            start, stop = setups[name]
            proc = start()
            try:
                results[name].append(iperf(port))
            finally:
                if stop:
                    stop(proc)
                # Only what this round started: its process group (the shell,
                # iperf3), and pasta/den/podman through their own stop above.
                os.killpg(proc.pid, 9)
                proc.wait()
                wait_port_free(port)
        print(f"round {r + 1}: " + "  ".join(f"{k} {v[-1]:.2f}" for k, v in results.items()), flush=True)
    med = {k: statistics.median(v) for k, v in results.items()}
    print("\nGbit/s, host -> container, median: " + ", ".join(f"{k} {v:.2f}" for k, v in med.items()))
    print(f"den / pasta by hand: {med['den'] / med['pasta']:.2f}x; den / host loopback: {med['den'] / med['loopback']:.0%}; den / podman: {med['den'] / med['podman']:.2f}x")


if __name__ == "__main__":
    main()
