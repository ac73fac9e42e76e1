#!/usr/bin/env python3
"""No-op start cost against history length: how long `rollgate migrate` takes when every
migration is already applied, over 10 and over 10,000 applied, for one or more builds.

    bench/noop-scale.py URL RUNS WORKDIR NAME=BINARY [NAME=BINARY...]

URL is a superuser URL as scripts/pg.sh prints it. WORKDIR gets two migration directories
(m10, m10k: trivial CREATE TABLE up files with DROP TABLE down files) and the server two
databases (noop_10, noop_10k), applied once with the first binary. Then every binary runs
a no-op `migrate` against both, 3 warm-up runs each, then RUNS rounds interleaved (each
round runs every case once, so load on a shared machine falls on all of them alike). Wall
time from fork to wait, CPU (user + system) and peak RSS (ru_maxrss) of each child, from
wait4. Timing stays out of the tests: this is the only place it is measured.
"""
import os
import statistics
import subprocess
import sys
import time


def write_dir(path, n):
    os.makedirs(path, exist_ok=True)
    for i in range(1, n + 1):
        with open(os.path.join(path, f"{i:05d}_t{i}.up.sql"), "w") as f:
            f.write(f"CREATE TABLE t_{i} (id int);\n")
        with open(os.path.join(path, f"{i:05d}_t{i}.down.sql"), "w") as f:
            f.write(f"DROP TABLE t_{i};\n")


def db_url(url, db):
    base, _, query = url.partition("?")
    return base.rsplit("/", 1)[0] + "/" + db + ("?" + query if query else "")


def run(binary, url, mig_dir, env):
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)
        os.execve(binary, [binary, "--database-url", url, "migrate", "--dir", mig_dir], env)
    _, status, usage = os.wait4(pid, 0)
    wall = (time.perf_counter() - start) * 1000
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{binary} migrate --dir {mig_dir} failed: status {status}")
    return wall, (usage.ru_utime + usage.ru_stime) * 1000, usage.ru_maxrss / 1024


def main():
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    url, runs, work = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    builds = [a.split("=", 1) for a in sys.argv[4:]]
    env = dict(os.environ, ROLLGATE_LEASE_MODE="none", ROLLGATE_TERMINATION_LOG="")
    load_start = os.getloadavg()
    sizes = {"10": 10, "10k": 10000}
    cases = []
    for label, n in sizes.items():
        mig_dir = os.path.join(work, "m" + label)
        write_dir(mig_dir, n)
        db = "noop_" + label
        subprocess.run(["psql", url, "-qc", f"DROP DATABASE IF EXISTS {db}", "-c",
                        f"CREATE DATABASE {db}"], check=True)
        run(builds[0][1], db_url(url, db), mig_dir, env)  # applies all n
        for name, binary in builds:
            cases.append((f"{name}, {label} applied", binary, db_url(url, db), mig_dir))
    for _, binary, u, d in cases:
        for _ in range(3):
            run(binary, u, d, env)
    results = {c[0]: [] for c in cases}
    for _ in range(runs):
        for label, binary, u, d in cases:
            results[label].append(run(binary, u, d, env))
    print(f"load average (1, 5, 15 min) at the start: {load_start}, at the end: {os.getloadavg()}")
    print("| case | wall mean (ms) | wall median (ms) | wall min (ms) | CPU mean (ms) | peak RSS (MiB) |")
    print("|---|---|---|---|---|---|")
    for label, r in results.items():
        wall = [x[0] for x in r]
        print(f"| {label} | {statistics.mean(wall):.1f} | {statistics.median(wall):.1f} | "
              f"{min(wall):.1f} | {statistics.mean(x[1] for x in r):.1f} | "
              f"{max(x[2] for x in r):.2f} |")


if __name__ == "__main__":
    main()
