#!/usr/bin/env python3
"""The bench user's side of den's benchmarks: runs the commands it is given
directly (no runuser, no shell per run), interleaved, and prints JSON.

    timer.py PLAN.json
    timer.py --lifecycle PLAN.json

PLAN: {"rounds": N, "warmup": W, "gap_ms": G, "groups": {GROUP: [STEP, ...]}} where a STEP is
{"name": ..., "argv": [...], "env": {...}}. Each round runs every group's steps in
order (a group such as `run -d` then `rm -f` belongs together), the groups in
alternating order, with G ms of idle time after each step (not timed). A step
that fails aborts the run with its stderr. Output:
{STEP-NAME: [ms, ...]}.

--lifecycle PLAN: {"rounds": R, "n": N, "tools": {TOOL: {"run": [...], "ps": [...],
"rm": [...]}}}: per round and tool (alternating order), N `run` (`{i}` in an argument
becomes the number), one `ps`, N `rm`, one by one; after the `ps` of the first round
it prints `hold TOOL` and waits for a line on stdin (the caller measures memory
then; not timed). Output: {TOOL: {"run": [s, ...], "ps": [...], "rm": [...]}}.

Each step is timed as a whole process, from posix_spawn to wait, like
`hyperfine -N`: the Python around it costs the same for every command
(the `spawn-true` step, /bin/true, shows how much).
"""
import json
import os
import sys
import time


def run(step, errfile):
    env = dict(os.environ)
    env.update(step.get("env", {}))
    # stderr to a file, not a pipe: a detached supervisor may keep it open.
    os.ftruncate(errfile, 0)
    devnull = os.open("/dev/null", os.O_RDWR)
    t = time.perf_counter()
    pid = os.posix_spawnp(step["argv"][0], step["argv"], env,
                          file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 0),
                                        (os.POSIX_SPAWN_DUP2, devnull, 1),
                                        (os.POSIX_SPAWN_DUP2, errfile, 2)])
    _, status = os.waitpid(pid, 0)
    ms = (time.perf_counter() - t) * 1000.0
    os.close(devnull)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        err = os.pread(errfile, 4096, 0).decode(errors="replace")
        sys.exit(f"{step['name']}: {' '.join(step['argv'])}: exit {code}\n{err}")
    return ms


def lifecycle(plan, errfile):
    tools = list(plan["tools"].items())
    out = {t: {"run": [], "ps": [], "rm": []} for t, _ in tools}
    for r in range(plan["rounds"]):
        for tool, cmds in (tools if r % 2 == 0 else tools[::-1]):
            each = lambda key, i: {"name": f"{tool} {key}", "argv": [a.replace("{i}", str(i)) for a in cmds[key]]}  # noqa: E731
            out[tool]["run"].append(sum(run(each("run", i), errfile) for i in range(plan["n"])) / 1000)
            out[tool]["ps"].append(run(each("ps", 0), errfile) / 1000)
            if r == 0:
                print(f"hold {tool}", file=sys.stderr, flush=True)
                sys.stdin.readline()
            out[tool]["rm"].append(sum(run(each("rm", i), errfile) for i in range(plan["n"])) / 1000)
    return out


def main():
    if sys.argv[1] == "--lifecycle":
        errfile = os.open(os.environ.get("TMPDIR", "/tmp"), os.O_TMPFILE | os.O_RDWR, 0o600)
        json.dump(lifecycle(json.load(open(sys.argv[2])), errfile), sys.stdout)
        return
    plan = json.load(open(sys.argv[1]))
    groups = list(plan["groups"].items())
    out = {s["name"]: [] for _, steps in groups for s in steps}
    errfile = os.open(os.environ.get("TMPDIR", "/tmp"), os.O_TMPFILE | os.O_RDWR, 0o600)
    for r in range(plan.get("warmup", 3) + plan["rounds"]):
        for _, steps in (groups if r % 2 == 0 else groups[::-1]):
            for s in steps:
                ms = run(s, errfile)
                if r >= plan.get("warmup", 3):
                    out[s["name"]].append(ms)
                time.sleep(plan.get("gap_ms", 0) / 1000)
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
