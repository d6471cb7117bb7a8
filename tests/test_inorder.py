"""Acks leave the worker in offset order per partition, whatever order work finishes in."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from processors.inorder import InOrderAcks


@st.composite
def reads_and_finishes(draw):
    partitions = draw(st.integers(1, 3))
    reads = []
    for p in range(partitions):
        start = draw(st.integers(0, 50))
        gaps = draw(st.lists(st.integers(1, 3), min_size=0, max_size=12))
        offset = start
        for gap in gaps:
            reads.append((p, offset))
            offset += gap  # offsets need not be contiguous (compaction, markers)
    order = draw(st.permutations(reads))
    return reads, order


@given(reads_and_finishes())
def test_acks_are_the_finished_head_of_each_partition(case) -> None:
    reads, finish_order = case
    acks: InOrderAcks[tuple[int, int]] = InOrderAcks()
    for p, offset in reads:
        acks.track(p, offset, (p, offset))
    finished: set[tuple[int, int]] = set()
    acked: list[tuple[int, int]] = []
    for p, offset in finish_order:
        finished.add((p, offset))
        acked.extend(acks.done(p, offset))
        for part in {p for p, _ in reads}:
            mine = [r for r in reads if r[0] == part]
            head = []
            for r in mine:  # the longest run of finished items from the start
                if r not in finished:
                    break
                head.append(r)
            assert [a for a in acked if a[0] == part] == head
    assert sorted(acked) == sorted(reads) and acks.pending() == 0


def test_a_late_first_entry_holds_back_the_ones_after_it() -> None:
    acks: InOrderAcks[str] = InOrderAcks()
    for offset, name in ((10, "a"), (11, "b"), (12, "c")):
        acks.track("p0", offset, name)
    assert acks.done("p0", 12) == [] and acks.done("p0", 11) == []
    assert acks.done("p0", 10) == ["a", "b", "c"]
    assert acks.done("p0", 10) == []  # a second finish acks nothing twice


def test_a_revoked_partition_acks_nothing_more() -> None:
    acks: InOrderAcks[str] = InOrderAcks()
    acks.track("p0", 1, "a")
    acks.track("p0", 2, "b")
    acks.forget("p0")
    assert acks.done("p0", 1) == [] and acks.pending() == 0


def test_an_offset_handed_out_twice_never_blocks_its_partition() -> None:
    """After a kill -9 and restart the consumer may hand out an offset whose first copy is
    still in flight: both copies are acked when either finishes, and later offsets go on."""
    acks: InOrderAcks[str] = InOrderAcks()
    acks.track("p", 1, "first copy of 1")
    acks.track("p", 2, "2")
    acks.track("p", 1, "second copy of 1")
    assert acks.done("p", 2) == []  # 1 is still in flight
    assert acks.done("p", 1) == ["first copy of 1", "second copy of 1", "2"]
    assert acks.done("p", 1) == []  # the other copy finishing changes nothing
    acks.track("p", 3, "3")
    assert acks.done("p", 3) == ["3"] and acks.pending() == 0


@given(st.lists(st.integers(0, 6), min_size=1, max_size=30), st.randoms())
def test_duplicates_in_any_order_release_every_copy_once(offsets, rnd) -> None:
    acks: InOrderAcks[tuple[int, int]] = InOrderAcks()
    copies = [(off, i) for i, off in enumerate(offsets)]
    for off, i in copies:
        acks.track("p", off, (off, i))
    finishing = list(copies)
    rnd.shuffle(finishing)
    released: list[tuple[int, int]] = []
    for off, _i in finishing:
        released.extend(acks.done("p", off))
    assert sorted(released) == sorted(copies) and acks.pending() == 0
