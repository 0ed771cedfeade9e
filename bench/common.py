"""Shared set-up for den's benchmarks: a loopback registry with the test
images and a bench user's home with den, podman and registry settings."""
import os
import pwd
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.environ.get("DEN_SHARED", os.path.join(HERE, "..", "..", "shared"))
# DEN_BENCH_PORT: another port (and registry directory), so that two
# benchmarks on one machine do not stop each other's registry.
PORT = int(os.environ.get("DEN_BENCH_PORT", "5050"))
REGISTRY = f"127.0.0.1:{PORT}"
REG_DIR = "/tmp/den-bench-registry" + ("" if PORT == 5050 else f"-{PORT}")
# Where the bench users' homes go: a tmpfs the bench mounts at HOMES (and
# leaves mounted), or with DEN_BENCH_HOMES=DIR, that directory as it is.
# These hosts' ext4 (no journal, `discard`) slows down as inodes churn: in
# one session a mkdir went from 0.03 ms to 0.5-0.9 ms in /tmp and /home,
# which made den's figures (its store and container state are in the home)
# drift to twice and more within minutes, and bwrap's not at all. A tmpfs
# gives each run the same ground; a healthy disk differs from it by tens
# of microseconds per run.
HOMES = os.environ.get("DEN_BENCH_HOMES", "/home/den-bench")


def home_for(kind, user):
    """The bench home of benchmark `kind` for `user`, below HOMES (0755, so
    the bench users reach their homes)."""
    os.makedirs(HOMES, mode=0o755, exist_ok=True)
    if "DEN_BENCH_HOMES" not in os.environ and not os.path.ismount(HOMES):
        sh(f"mount -t tmpfs -o mode=0755,size=8g den-bench {HOMES}")
    return f"{HOMES}/{kind}-{user}"


# The Debian package of each tool a benchmark may need.
PACKAGES = {"podman": "podman", "bwrap": "bubblewrap", "crun": "crun", "runc": "runc",
            "umoci": "umoci", "skopeo": "skopeo", "newuidmap": "uidmap", "pasta": "passt",
            "docker-registry": "docker-registry", "hyperfine": "hyperfine", "iperf3": "iperf3"}


def need_tools(tools):
    """Exits with the apt-get line that installs whichever of `tools` is missing."""
    missing = [t for t in tools if not shutil.which(t)]
    if missing:
        pkgs = " ".join(sorted({PACKAGES.get(t, t) for t in missing}))
        sys.exit(f"missing {', '.join(missing)}: install with `apt-get install -y {pkgs}` (as root)")


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=True, check=True, **kw)


def start_registry():
    stop_registry()
    sh(f"{SHARED}/images/start-registry -p {PORT} -d {REG_DIR} >/dev/null")
    sh(f"TMPDIR=/tmp {SHARED}/images/push-images {REGISTRY} >/dev/null")


def stop_registry():
    """Stops the bench registry, if one runs, and waits until it is gone."""
    try:
        pid = int(open(f"{REG_DIR}/registry.pid").read())
    except (OSError, ValueError):
        return
    sh(f"kill {pid} 2>/dev/null || true")
    for _ in range(100):
        if not os.path.exists(f"/proc/{pid}"):
            break
        time.sleep(0.05)


def user_env(user, home):
    return (f"env -i HOME={home} USER={user} PATH=/usr/local/bin:/usr/bin:/bin "
            f"XDG_RUNTIME_DIR={home}/run TMPDIR={home}/tmp")


def as_user(user, home, cmd, check=True):
    return subprocess.run(f"runuser -u {user} -- {user_env(user, home)} sh -c '{cmd}'", shell=True,
                          check=check, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def prepare_home(user, home, den_src):
    """A fresh home for `user` with den, den's and podman's registry settings."""
    pw = pwd.getpwnam(user)
    shutil.rmtree(home, ignore_errors=True)
    for d in ["run", "tmp", ".config/den", ".config/containers"]:
        os.makedirs(f"{home}/{d}", exist_ok=True)
    with open(f"{home}/.config/den/registries.toml", "w") as f:
        f.write(f'[[registry]]\nlocation = "{REGISTRY}"\ninsecure = true\n')
    with open(f"{home}/.config/containers/storage.conf", "w") as f:
        f.write('[storage]\ndriver = "overlay"\n')
    with open(f"{home}/.config/containers/registries.conf", "w") as f:
        f.write(f'[[registry]]\nlocation = "{REGISTRY}"\ninsecure = true\n')
    # crun refuses this kind of host's hybrid cgroups; runc with cgroupfs works.
    with open(f"{home}/.config/containers/containers.conf", "w") as f:
        f.write('[engine]\nruntime = "runc"\ncgroup_manager = "cgroupfs"\n')
    shutil.copy(den_src, f"{home}/den")
    sh(f"chown -R {pw.pw_uid}:{pw.pw_gid} {home} && chmod 0700 {home}/run && chmod 0755 {home} {home}/den")
    sh("mount --make-rshared / 2>/dev/null || true")
