#!/usr/bin/env python3
"""The Flask + MariaDB compose project (issue 11's reference app): `up -d`
until a request that reads the database answers HTTP 200 on the published
port, an unchanged `up -d` on the running project, and `down`; interleaved
rounds of `den compose` and Debian's podman-compose, images present and the
web image built before the first round.

    sudo apt-get install -y podman-compose golang-github-containernetworking-plugin-dnsname
    sudo python3 bench/compose.py [--rounds 5] [--user den-sub]

`depends_on: condition: service_healthy` needs den run's health checks.
"""
import argparse
import os
import shutil
import statistics
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import HERE, home_for, REGISTRY, SHARED, as_user, prepare_home, sh, start_registry, stop_registry  # noqa: E402

PORT = 18080

APP = """\
import pymysql
from flask import Flask

app = Flask(__name__)


@app.get('/')
def index():
    with pymysql.connect(host='db', user='app', password='apppw', database='app') as c, c.cursor() as cur:
        cur.execute('SELECT 1')
        return str(cur.fetchone()[0])
"""

DOCKERFILE = f"""\
FROM {REGISTRY}/library/python:3.11-slim
COPY wheels/ /wheels/
RUN pip install --no-cache-dir --no-index --find-links /wheels flask==3.0.3 PyMySQL==1.1.1
COPY app.py /app/app.py
WORKDIR /app
CMD ["python", "-m", "flask", "--app", "app", "run", "--host", "0.0.0.0", "--port", "5000"]
"""

COMPOSE = f"""\
services:
  db:
    image: {REGISTRY}/library/mariadb:10.11
    environment:
      MARIADB_ROOT_PASSWORD: rootpw
      MARIADB_DATABASE: app
      MARIADB_USER: app
      MARIADB_PASSWORD: apppw
    volumes:
      - dbdata:/var/lib/mysql
    healthcheck:
      test: ["CMD", "mariadb-admin", "ping", "-h", "127.0.0.1", "-uapp", "-papppw"]
      interval: 1s
      timeout: 5s
      retries: 60
  web:
    build: ./web
    image: bench-web
    ports:
      - "127.0.0.1:{PORT}:5000"
    depends_on:
      db:
        condition: service_healthy
volumes:
  dbdata:
"""


def write_project(home, uid, gid):
    proj = f"{home}/app"
    shutil.rmtree(proj, ignore_errors=True)
    os.makedirs(f"{proj}/web/wheels")
    for w in os.listdir(f"{SHARED}/wheels"):
        if w.endswith(".whl"):
            shutil.copy(f"{SHARED}/wheels/{w}", f"{proj}/web/wheels/{w}")
    for path, text in [("web/app.py", APP), ("web/Dockerfile", DOCKERFILE), ("compose.yaml", COMPOSE)]:
        with open(f"{proj}/{path}", "w") as f:
            f.write(text)
    sh(f"chown -R {uid}:{gid} {proj}")
    return proj


def answered(limit=120):
    """Until GET / (a database read) answers 200 on the published port."""
    t = time.perf_counter()
    while time.perf_counter() - t < limit:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.02)
    sys.exit("the web service never answered 200")


def timed(user, home, cmd, wait_http=False):
    t = time.perf_counter()
    p = as_user(user, home, cmd, check=False)
    if p.returncode:
        sys.exit(f"{cmd}: {p.stderr.decode()[-800:]}")
    if wait_http:
        answered()
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--user", default="den-sub")
    ap.add_argument("--den", default=os.path.join(HERE, "..", "target", "release", "den"))
    a = ap.parse_args()
    if not shutil.which("podman-compose"):
        sys.exit("podman-compose is missing: apt-get install -y podman-compose golang-github-containernetworking-plugin-dnsname")
    import pwd
    pw = pwd.getpwnam(a.user)
    home = home_for("composebench", a.user)
    start_registry()
    try:
        prepare_home(a.user, home, a.den)
        proj = write_project(home, pw.pw_uid, pw.pw_gid)
        den = f"{home}/den"
        tools = {
            "den": f"cd {proj} && {den} compose -p bench",
            "podman-compose": f"cd {proj} && podman-compose -p bench",
        }
        # Images present and the web image built before any round.
        timed(a.user, home, f"cd {proj} && {den} compose -p bench build && {den} compose -p bench pull")
        timed(a.user, home, f"cd {proj} && podman pull -q --tls-verify=false {REGISTRY}/library/mariadb:10.11 "
                            f"&& podman build -q -t bench-web web")
        times = {k: {"up": [], "noop": [], "down": []} for k in tools}
        for r in range(a.rounds):
            for name in (list(tools) if r % 2 == 0 else list(tools)[::-1]):
                base = tools[name]
                times[name]["up"].append(timed(a.user, home, f"{base} up -d >/dev/null", wait_http=True))
                times[name]["noop"].append(timed(a.user, home, f"{base} up -d >/dev/null"))
                answered()
                times[name]["down"].append(timed(a.user, home, f"{base} down >/dev/null"))
            print(f"round {r + 1}: " + "  ".join(
                f"{k} up {v['up'][-1]:.2f}s noop {v['noop'][-1]:.2f}s down {v['down'][-1]:.2f}s"
                for k, v in times.items()), flush=True)
        med = {k: {s: statistics.median(x) for s, x in v.items()} for k, v in times.items()}
        for step in ["up", "noop", "down"]:
            d, p = med["den"][step], med["podman-compose"][step]
            print(f"{step:5} median of {a.rounds}: den {d:.2f}s, podman-compose {p:.2f}s, ratio {d / p:.2f}x")
    finally:
        as_user(a.user, home, f"cd {home}/app && {home}/den compose -p bench down -v >/dev/null 2>&1; "
                              "podman-compose -p bench down -v >/dev/null 2>&1; true", check=False)
        stop_registry()


if __name__ == "__main__":
    main()
