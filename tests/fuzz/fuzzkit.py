"""Hypothesis profiles and shared strategies for the fuzz targets.

Two profiles, chosen with ``HYPOTHESIS_PROFILE`` (default ``ci``):

* ``ci`` — what ``make test`` runs: a few hundred examples per target, the whole set well under a
  minute on two cores;
* ``fuzz`` — what ``make fuzz`` runs: the same targets with 20,000 examples each.

Both use the same per-example deadlines (a parser that needs longer than its deadline on one input
is a bug: a hang or a super-linear path), and the example database under ``.hypothesis/`` at the
top of the worktree (git ignores it), so a failure found by a long local run is replayed first next
time. The profiles are applied per target with ``@fuzz(...)``, not loaded globally, so the other
property tests of the suite keep their own settings.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase

ROOT = Path(__file__).resolve().parents[2]
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")

# A parse of a few KB is microseconds; the deadline is generous for a shared two-core machine and
# still catches a hang or a quadratic path.
PARSER_DEADLINE = timedelta(milliseconds=1000)
# One command line over a real socket, answer included.
WIRE_DEADLINE = timedelta(seconds=5)

_common = {
    "database": DirectoryBasedExampleDatabase(ROOT / ".hypothesis" / "examples"),
    "deadline": PARSER_DEADLINE,
    "print_blob": True,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
}
settings.register_profile("ci", max_examples=200, **_common)
settings.register_profile("fuzz", max_examples=20_000, **_common)
if PROFILE not in ("ci", "fuzz"):
    raise RuntimeError(f"HYPOTHESIS_PROFILE must be ci or fuzz, not {PROFILE!r}")


def fuzz(*, scale: float = 1.0, **overrides: object) -> settings:
    """The current profile's settings for one target; ``scale`` shrinks or grows its example count
    (the socket targets cost milliseconds an example, the pure parsers microseconds)."""
    base = settings.get_profile(PROFILE)
    return settings(base, max_examples=max(10, int(base.max_examples * scale)), **overrides)


def lines_from(words: list[str], *, max_size: int = 20) -> st.SearchStrategy[bytes]:
    """Byte strings built from protocol-shaped pieces, with arbitrary text and octets mixed in."""
    piece = st.one_of(
        st.sampled_from([w.encode("utf-8") for w in words]),
        st.text(max_size=6).map(lambda t: t.encode("utf-8", "surrogatepass")),
        st.binary(max_size=6),
    )
    return st.lists(piece, max_size=max_size).map(b"".join)
