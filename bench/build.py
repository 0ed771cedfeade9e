#!/usr/bin/env python3
"""`den build` against rootless `buildah bud --layers`, interleaved, as the
bench user, base images from a loopback registry:

  flask        the Flask app (python:3.11-slim, wheels from ../shared/wheels):
               uncached (--no-cache) and fully cached rebuild
  files        20,000 small files and one 200 MB file in one COPY (busybox):
               uncached, cached, and cached after touching every file's mtime

Run as root (apt-get install -y buildah first):

    sudo python3 bench/build.py [--rounds N] [--den PATH] [--user den-sub]

Each round times every (case, tool) once, in an order reversed every other
round. Prints the median, p10 and p90 per case and tool, and den's ratio to
buildah per case (the issue's targets: cached <= 0.1x, uncached <= 0.7x).
"""
import argparse
import os
import pwd
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from common import HERE, home_for, SHARED, as_user, prepare_home, sh, start_registry, stop_registry  # noqa: E402

# A registry of its own: other benchmarks may run at the same time.
common.PORT = 5071
common.REGISTRY = REGISTRY = f"127.0.0.1:{common.PORT}"
common.REG_DIR = "/tmp/den-buildbench-registry"

PYTHON = f"{REGISTRY}/library/python:3.11-slim"
BUSYBOX = f"{REGISTRY}/library/busybox:latest"


def flask_context(ctx):
    os.makedirs(f"{ctx}/wheels", exist_ok=True)
    sh(f"cp {SHARED}/wheels/*.whl {ctx}/wheels/")
    open(f"{ctx}/requirements.txt", "w").write("flask\n")
    open(f"{ctx}/app.py", "w").write(
        "from flask import Flask\napp = Flask(__name__)\n\n@app.route('/')\n"
        "def hello():\n    return 'hello\\n'\n")
    open(f"{ctx}/Dockerfile", "w").write(
        f"FROM {PYTHON}\nWORKDIR /app\nCOPY wheels /wheels\nCOPY requirements.txt .\n"
        "RUN pip install --no-index --find-links /wheels -r requirements.txt\n"
        "COPY . .\nEXPOSE 5000\nCMD [\"flask\", \"run\", \"--host=0.0.0.0\"]\n")


def files_context(ctx):
    for d in range(200):
        os.makedirs(f"{ctx}/d{d}", exist_ok=True)
        for f in range(100):
            with open(f"{ctx}/d{d}/f{f}.txt", "w") as fh:
                fh.write(f"file {d}/{f}\n" * 8)
    sh(f"head -c 200M /dev/urandom > {ctx}/big.bin")
    open(f"{ctx}/Dockerfile", "w").write(f"FROM {BUSYBOX}\nCOPY . /data\n")


def prepare(user, den_src):
    home = home_for("buildbench", user)
    prepare_home(user, home, den_src)
    flask_context(f"{home}/flask")
    files_context(f"{home}/files")
    pw = pwd.getpwnam(user)
    sh(f"chown -R {pw.pw_uid}:{pw.pw_gid} {home}/flask {home}/files")
    den = f"{home}/den --root {home}/den-store"
    for image in (PYTHON, BUSYBOX):
        as_user(user, home, f"{den} pull -q {image} >/dev/null")
        as_user(user, home, f"buildah pull -q --tls-verify=false {image} >/dev/null")
    return home


def commands(home):
    den = f"{home}/den --root {home}/den-store build -q"
    # crun 1.8 refuses this host's hybrid cgroup hierarchy; runc runs.
    bah = "buildah bud --layers -q --tls-verify=false --runtime runc --cgroup-manager cgroupfs"
    touch = f"find {home}/files -exec touch {{}} + && "
    cases = {}
    for tool, cmd in (("den", den), ("buildah", bah)):
        for app in ("flask", "files"):
            ctx = f"{home}/{app}"
            cases[(f"{app} uncached", tool)] = f"{cmd} --no-cache -t {app}-{tool} {ctx}"
            cases[(f"{app} cached", tool)] = f"{cmd} -t {app}-{tool} {ctx}"
        cases[("files touched", tool)] = f"{touch}{cmd} -t files-{tool} {home}/files"
    return cases


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--den", default=os.path.join(HERE, "..", "target", "release", "den"))
    ap.add_argument("--user", default="den-sub")
    a = ap.parse_args()
    start_registry()
    try:
        home = prepare(a.user, a.den)
        cmds = commands(home)
        # Each uncached build comes before its cached rebuild.
        order = ["flask uncached", "flask cached", "files uncached", "files cached", "files touched"]
        samples = {k: [] for k in cmds}
        for r in range(a.rounds):
            tools = ["den", "buildah"] if r % 2 == 0 else ["buildah", "den"]
            for tool in tools:
                for case in order:
                    sh("sync")
                    t = time.perf_counter()
                    p = as_user(a.user, home, cmds[(case, tool)], check=False)
                    dt = time.perf_counter() - t
                    if p.returncode != 0:
                        sys.exit(f"{tool} {case} failed: {p.stderr.decode()[-800:]}")
                    samples[(case, tool)].append(dt)
            print(f"round {r + 1}: " + "  ".join(
                f"{c}: den {samples[(c, 'den')][-1]:.2f}s buildah {samples[(c, 'buildah')][-1]:.2f}s"
                for c in order), flush=True)
        print(f"\n{'case':16} {'tool':8} {'median':>8} {'p10':>8} {'p90':>8}   (s, {a.rounds} rounds)")
        for case in order:
            for tool in ("den", "buildah"):
                xs = samples[(case, tool)]
                q = statistics.quantiles(xs, n=10) if len(xs) > 1 else [xs[0]] * 9
                print(f"{case:16} {tool:8} {statistics.median(xs):8.2f} {q[0]:8.2f} {q[-1]:8.2f}")
        for case in order:
            ratio = statistics.median(samples[(case, "den")]) / statistics.median(samples[(case, "buildah")])
            print(f"den / buildah, {case}: {ratio:.2f}x")
    finally:
        stop_registry()
        as_user(a.user, home_for("buildbench", a.user), "buildah rm -a >/dev/null 2>&1; "
                "buildah rmi -a -f >/dev/null 2>&1; true", check=False)


if __name__ == "__main__":
    main()
