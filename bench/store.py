"""Store benchmark: the same workload on plain SQLite and on the encrypted store, side by side.

    .venv/bin/python bench/store.py [--messages 10000]

Prints append rates (one message per transaction and batched), unlock latency (Argon2id with the
default settings + open), SEARCH TEXT and header/ENVELOPE fetch over the whole mailbox, and durable
spool appends. "plain" runs Sealmail's own store code on an unencrypted file (the anchor); the
ratio column is encrypted / plain (time) or plain / encrypted (rate), so lower is better.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlcipher3

sys.path.insert(0, str(Path(__file__).parent))

from sealmail.crypto import keys
from sealmail.settings import Settings
from sealmail.store import db as store_db
from sealmail.store import mailboxdb as mailboxdb_module
from sealmail.store.mailbox import Mailbox
from sealmail.store.mailstore import MailStore
from sealmail.store.search import Text

from corpus import corpus, vocabulary


def _open_plain(
    path: Path, key: bytes, *, synchronous: str = "NORMAL", cache_mib: int = store_db.DEFAULT_CACHE_MIB
) -> sqlcipher3.Connection:
    """The same connection setup without a key: an ordinary SQLite file."""
    db = sqlcipher3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=5.0)
    for pragma in (
        "encoding = 'UTF-8'",
        "journal_mode = WAL",
        f"synchronous = {synchronous}",
        "busy_timeout = 5000",
        "foreign_keys = ON",
        f"cache_size = -{cache_mib * 1024}",
    ):
        db.execute(f"PRAGMA {pragma}")
    return db


@contextmanager
def variant(name: str) -> Iterator[None]:
    original = mailboxdb_module.open_encrypted
    if name == "plain":
        mailboxdb_module.open_encrypted = _open_plain
    try:
        yield
    finally:
        mailboxdb_module.open_encrypted = original


def timed(fn: Callable[[], object], repeat: int = 5) -> float:
    """Median seconds of ``repeat`` runs."""
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def run_variant(name: str, messages: list[bytes], workdir: Path) -> dict[str, float]:
    results: dict[str, float] = {}
    key = os.urandom(32)
    with variant(name):
        single = Mailbox("1" * 24, workdir / f"{name}-single.sqlite", key)
        sample = messages[:1000]
        start = time.perf_counter()
        for raw in sample:
            single.append("INBOX", raw)
        results["append, 1 per transaction (msg/s)"] = len(sample) / (time.perf_counter() - start)
        single.close()

        box = Mailbox("2" * 24, workdir / f"{name}-big.sqlite", key)
        start = time.perf_counter()
        for i in range(0, len(messages), 100):
            box.append_many("INBOX", [(raw, (), None) for raw in messages[i : i + 100]])
        results["append, 100 per transaction (msg/s)"] = len(messages) / (time.perf_counter() - start)

        rare = vocabulary(random.Random(4242))[2000]  # in ~4% of the messages
        results["SEARCH TEXT rare word, 4% (ms)"] = 1000 * timed(lambda: box.search("INBOX", Text("text", rare)))
        results["SEARCH TEXT 'quarterly', 93% (ms)"] = 1000 * timed(
            lambda: box.search("INBOX", Text("text", "quarterly"))
        )
        results["SEARCH FROM 'chloé' (ms)"] = 1000 * timed(lambda: box.search("INBOX", Text("from", "chloé")))
        infos = box.messages("INBOX")
        results["FETCH 1:* FLAGS metadata (ms)"] = 1000 * timed(lambda: box.messages("INBOX"))
        ids = [i.body_id for i in infos]
        results["FETCH all headers (ms)"] = 1000 * timed(lambda: box.headers(ids))
        results["FETCH all ENVELOPEs (ms)"] = 1000 * timed(lambda: [json.loads(e) for e in box.envelopes(ids).values()])
        results["FETCH 50 whole bodies (ms)"] = 1000 * timed(lambda: [box.raw(i.body_id) for i in infos[::200]])
        results["mailbox size (MB)"] = sum(p.stat().st_size for p in workdir.glob(f"{name}-big.sqlite*")) / 1e6
        box.close()
    return results


def unlock_latency(workdir: Path) -> float:
    settings = Settings(data_dir=workdir)
    params = keys.KdfParams(settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism)
    found, _ = keys.new_secrets()
    wrapped = keys.wrap_with_password(found, "bench password", "alias", params)
    store = MailStore(workdir)
    store.create("3" * 24, found.mailbox_key)

    def unlock() -> None:
        opened = keys.unwrap_with_password(wrapped, "bench password", "alias")
        store_db.open_encrypted(store.mailbox_path("3" * 24), opened.mailbox_key).close()

    return 1000 * timed(unlock, repeat=7)


def spool_rates(workdir: Path, count: int = 400) -> tuple[float, float]:
    _found, public = keys.new_secrets()
    store = MailStore(workdir)
    raw = corpus(1)[0]
    start = time.perf_counter()
    for _ in range(count):
        store.deliver("4" * 24, public, raw)
    single = count / (time.perf_counter() - start)
    from datetime import UTC, datetime

    from sealmail.store.spool import seal_message

    spool = store.spool("5" * 24)
    start = time.perf_counter()
    for _ in range(count // 20):
        spool.append_many([seal_message(public, "5" * 24, raw, datetime.now(UTC)) for _ in range(20)])
    grouped = count / (time.perf_counter() - start)
    return single, grouped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    args = parser.parse_args()
    messages = corpus(args.messages)
    print(
        f"corpus: {len(messages)} messages, {sum(map(len, messages)) / 1e6:.1f} MB, "
        f"{sum(1 for m in messages if b'multipart/mixed' in m)} with attachments"
    )
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as tmp:
        workdir = Path(tmp)
        plain = run_variant("plain", messages, workdir)
        encrypted = run_variant("encrypted", messages, workdir)
        print(f"\n{'workload':<40} {'plain':>10} {'encrypted':>10} {'ratio':>7}")
        for label in plain:
            p, e = plain[label], encrypted[label]
            ratio = p / e if "/s" in label else e / p
            print(f"{label:<40} {p:>10.1f} {e:>10.1f} {ratio:>7.2f}")
        print(f"\nunlock (Argon2id at default settings + open): {unlock_latency(workdir):.1f} ms")
        single, grouped = spool_rates(workdir)
        print(f"durable sealed spool appends (fsync each):    {single:.0f} msg/s")
        print(f"durable sealed spool appends (20 per fsync):  {grouped:.0f} msg/s")


if __name__ == "__main__":
    main()
