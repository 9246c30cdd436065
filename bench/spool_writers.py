"""One hot spool, written by two MX session processes: each on its own, or through one writer.

    .venv/bin/python bench/spool_writers.py [--appends 150] [--threads 4] [--fsync-ms 0,5] [--rounds 3]

Two processes with ``--threads`` threads each append ~4 KB sealed-size records to one spool, as two
MX session processes do for a hot mailbox, and each append returns only once it is committed
(``synchronous=FULL``). *each process* is how the MX wrote before ``sealmail.smtp.spoolwriter``:
both processes group-commit their own appends and take turns on the spool's lock. *one writer* is
how it writes now: both hand their records to one writer (the accepting MX process), which commits
all that wait in one transaction and one fsync. ``--fsync-ms`` adds a pause before each COMMIT (the
spool's test hook) standing in for a disk whose fsync takes that long: this machine's virtual disk
syncs in ~0.1 ms when idle, a spinning disk or a busy SSD takes milliseconds. Prints appends per
second and the latency of one append (p50, p99). Print numbers, never assert on them.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

MAILBOX = "e" * 24
RECORD = os.urandom(4200)


def _direct(data_dir: str, appends: int, threads: int, out: multiprocessing.Queue[list[float]]) -> None:
    from sealmail.store.spool import Spool

    spool = Spool(Path(data_dir) / "spool" / f"{MAILBOX}.sqlite")
    latencies: list[float] = []

    def run() -> None:
        for _ in range(appends):
            start = time.perf_counter()
            spool.append(RECORD)
            latencies.append(time.perf_counter() - start)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    spool.close()
    out.put(latencies)


def _handing_off(fd: int, appends: int, threads: int, out: multiprocessing.Queue[list[float]]) -> None:
    from sealmail.smtp.spoolwriter import SpoolHandoff

    async def main() -> list[float]:
        handoff = SpoolHandoff(socket.socket(fileno=fd), 1 << 20)
        await handoff.start()
        latencies: list[float] = []

        def run() -> None:
            for _ in range(appends):
                start = time.perf_counter()
                handoff.append(MAILBOX, RECORD)
                latencies.append(time.perf_counter() - start)

        await asyncio.gather(*(asyncio.to_thread(run) for _ in range(threads)))
        await handoff.close()
        return latencies

    out.put(asyncio.run(main()))


def one_round(mode: str, appends: int, threads: int, workdir: Path) -> str:
    from sealmail.smtp.spoolwriter import SpoolWriter
    from sealmail.store.mailstore import MailStore
    from sealmail.store.spool import Spool

    data_dir = Path(tempfile.mkdtemp(dir=workdir))
    Spool(data_dir / "spool" / f"{MAILBOX}.sqlite").close()
    fork = multiprocessing.get_context("fork")
    out: multiprocessing.Queue[list[float]] = fork.Queue()
    start = time.perf_counter()
    commits = ""
    if mode == "each process":
        procs = [fork.Process(target=_direct, args=(str(data_dir), appends, threads, out)) for _ in range(2)]
        for proc in procs:
            proc.start()
        latencies = out.get() + out.get()
        for proc in procs:
            proc.join()
    else:

        async def writer() -> tuple[list[float], int]:
            spools = SpoolWriter(MailStore(data_dir))
            procs = []
            for _ in range(2):
                ours, theirs = socket.socketpair()
                spools.attach(ours)
                proc = fork.Process(target=_handing_off, args=(theirs.fileno(), appends, threads, out))
                proc.start()
                theirs.close()
                procs.append(proc)
            got = await asyncio.to_thread(out.get) + await asyncio.to_thread(out.get)
            for proc in procs:
                await asyncio.to_thread(proc.join)
            await spools.close()
            return got, spools.commits

        latencies, count = asyncio.run(writer())
        commits = f"{count} commits"
    seconds = time.perf_counter() - start
    latencies.sort()
    p50, p99 = latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)]
    rate = len(latencies) / seconds
    return f"{mode:<14} {rate:>9.0f} {1000 * p50:>8.2f} {1000 * p99:>8.2f}  {commits}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appends", type=int, default=150, help="per thread")
    parser.add_argument("--threads", type=int, default=4, help="per process")
    parser.add_argument("--fsync-ms", default="0,5", help="extra milliseconds per commit, comma-separated")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is None:  # one interpreter per delay: the spool reads its test hook once, at import
        for delay in (float(ms) for ms in args.fsync_ms.split(",")):
            env = {**os.environ, "SEALMAIL_TEST_SPOOL_COMMIT_DELAY": str(delay / 1000)}
            argv = [sys.executable, __file__, "--child", str(delay), "--appends", str(args.appends)]
            argv += ["--threads", str(args.threads), "--rounds", str(args.rounds)]
            subprocess.run(argv, env=env, check=True)
        return
    total = 2 * args.threads * args.appends
    print(f"\n{total} appends of {len(RECORD)} octets to one spool, 2 processes x {args.threads} threads;"
          f" commit + {args.child:g} ms")  # fmt: skip
    print(f"{'':<14} {'appends/s':>9} {'p50 ms':>8} {'p99 ms':>8}", flush=True)
    with tempfile.TemporaryDirectory(prefix="sealmail-bench-spool-", dir=os.environ.get("BENCH_TMP")) as workdir:
        for _ in range(args.rounds):
            for mode in ("each process", "one writer"):
                print(one_round(mode, args.appends, args.threads, Path(workdir)), flush=True)


if __name__ == "__main__":
    main()
