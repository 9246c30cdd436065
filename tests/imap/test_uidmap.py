"""The run-length UID map behaves exactly like a sorted list of UIDs."""

from __future__ import annotations

import bisect

from hypothesis import given
from hypothesis import strategies as st

from sealmail.imap.uidmap import UidMap


@given(st.sets(st.integers(1, 300), max_size=150), st.data())
def test_uid_map_matches_a_sorted_list(values: set[int], data: st.DataObject) -> None:
    uids = sorted(values)
    m = UidMap(uids)
    assert list(m) == uids
    assert len(m) == len(uids)
    assert m.last() == (uids[-1] if uids else 0)
    for probe in data.draw(st.lists(st.integers(0, 305), max_size=20)):
        assert m.bisect_left(probe) == bisect.bisect_left(uids, probe)
        assert m.bisect_right(probe) == bisect.bisect_right(uids, probe)
        assert m.index(probe) == (uids.index(probe) if probe in values else -1)
    if uids:
        i = data.draw(st.integers(0, len(uids) - 1))
        j = data.draw(st.integers(i - 1, len(uids) - 1))
        assert list(m.between(i, j)) == uids[i : j + 1]
        assert m[i] == uids[i]
    doomed = set(data.draw(st.lists(st.sampled_from(uids), max_size=len(uids)))) if uids else set()
    m.remove(doomed)
    kept = [u for u in uids if u not in doomed]
    assert list(m) == kept
    m.extend([(kept[-1] if kept else 0) + 1, (kept[-1] if kept else 0) + 5])
    assert len(m) == len(kept) + 2
