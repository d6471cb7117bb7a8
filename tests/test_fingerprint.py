"""SimHash fingerprints and story ids: copies of one story group, different stories do not."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from processors.fingerprint import MAX_DISTANCE, StoryIndex, hamming, simhash
from tests.conftest import shared_path

T0 = datetime(2024, 3, 1, tzinfo=UTC)


def _fundus_texts() -> list[str]:
    truth = json.loads(shared_path("extraction-dev", "fundus-evaluation",
                                   "ground_truth.json").read_text())
    return ["\n".join(v["body"]) for v in truth.values() if len(" ".join(v["body"]).split()) > 150]


def _wire_copies(text: str) -> list[str]:
    """How one wire story reaches users through different outlets."""
    paras = [p for p in text.split("\n") if p.strip()] or [text]
    rng = random.Random(len(text))
    words = text.split()
    for i in rng.sample(range(len(words)), max(1, len(words) // 200)):
        words[i] = "edited"
    return [
        "By Staff Reporter, Associated Press\n" + text + "\nReporting by J. Smith; editing by A. Roe",
        "Advertisement\n" + text + "\nSign up for our daily newsletter. Share this article.",
        # a trimmed tail, as outlets cut wire copy to length (a small share of the story:
        # cutting much more, e.g. half, makes a different text for SimHash)
        "\n".join(paras[:-1]) if len(paras[-1].split()) * 15 < len(words) else text + "\nUpdated",
        " ".join(words),
    ]


def test_simhash_is_stable_64_bit_and_deterministic() -> None:
    text = "The quick brown fox jumps over the lazy dog near the river bank."
    value = simhash(text)
    assert 0 < value < 2**64
    assert simhash(text) == value
    assert simhash("") == 0 and simhash("  ,.;  ") == 0
    # Case and punctuation do not change the fingerprint; words do.
    assert simhash(text.upper().replace(".", "!")) == value
    assert simhash(text.replace("fox", "cat")) != value


def test_seed_story_copies_are_near_and_different_stories_far(seed_story: str) -> None:
    base = simhash(seed_story)
    for copy in _wire_copies(seed_story):
        assert hamming(base, simhash(copy)) <= MAX_DISTANCE
    others = _fundus_texts()
    assert min(hamming(base, simhash(t)) for t in others) > 2 * MAX_DISTANCE


def test_unspaced_scripts_are_fingerprinted_by_characters() -> None:
    text = ("救援队连夜搜寻幸存者，此前河水决堤，淹没了山谷中的三个村庄，官员周二表示。"
            "地区州长说，两百多所房屋受损，学校和体育馆已开放临时避难所。" * 3)
    edited = text.replace("周二", "周三", 1)
    other = "東京株式市場で日経平均株価は大幅に反発し、半導体関連株を中心に買いが広がった。" * 3
    assert hamming(simhash(text), simhash(edited)) <= MAX_DISTANCE
    assert hamming(simhash(text), simhash(other)) > 2 * MAX_DISTANCE


def test_story_index_groups_wire_copies_and_separates_stories(seed_story: str) -> None:
    index = StoryIndex(None)
    stories = [seed_story, *_fundus_texts()[:30]]
    for n, text in enumerate(stories):
        first = index.assign(f"a{n}", simhash(text), when=T0)
        assert first == f"a{n}", "a new story starts its own group"
        for m, copy in enumerate(_wire_copies(text)):
            assert index.assign(f"a{n}-copy{m}", simhash(copy), when=T0) == f"a{n}"
    assert len(index) == len(stories) * 5


def test_assign_is_idempotent_and_empty_text_groups_with_nothing() -> None:
    index = StoryIndex(None)
    fp = simhash("Rescue teams searched through the night for survivors after the floods.")
    assert index.assign("x", fp, when=T0) == "x"
    assert index.assign("y", fp, when=T0) == "x"
    assert index.assign("y", 12345, when=T0) == "x", "a replay keeps the story id it had"
    assert index.assign("e1", 0, when=T0) == "e1"
    assert index.assign("e2", 0, when=T0) == "e2"


def test_story_index_persists_and_prunes(tmp_path: Path) -> None:
    path = tmp_path / "stories.sqlite"
    fp = simhash("A story about the election results in the northern province, counted today.")
    index = StoryIndex(path, retention_days=2)
    assert index.assign("old", fp, when=T0) == "old"
    index.close()
    index = StoryIndex(path, retention_days=2)
    assert index.assign("copy", fp ^ 0b101, when=T0 + timedelta(hours=1)) == "old"
    assert index.prune(T0 + timedelta(days=3)) == 2
    assert len(index) == 0
    assert index.assign("later", fp, when=T0 + timedelta(days=3)) == "later"
    index.close()


def test_story_index_prunes_by_itself() -> None:
    index = StoryIndex(None, retention_days=1, prune_every=10)
    for i in range(25):
        index.assign(f"a{i}", simhash(f"story number {i} " * 20 + str(i)),
                     when=T0 + timedelta(days=i))
    assert len(index) < 12


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 2**64 - 1), st.sets(st.integers(0, 63), max_size=MAX_DISTANCE))
def test_any_fingerprint_within_max_distance_is_found(fp: int, flips: set[int]) -> None:
    index = StoryIndex(None)
    index.assign("first", fp or 1, when=T0)
    other = fp or 1
    for bit in flips:
        other ^= 1 << bit
    if other == 0:
        return
    assert index.assign("second", other, when=T0) == "first"


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=500))
def test_simhash_never_raises(text: str) -> None:
    assert 0 <= simhash(text) < 2**64
