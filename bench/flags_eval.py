"""Precision and recall of the cleaning stage's flags on a labelled set.

The set: pages written for this project (tests/flag_pages.py: 20 normal articles, 8 or more
per flag, each in one of several site layouts) and the 80 real pages of
../shared/data/extraction-dev/fundus-evaluation read in place, whose labels are known: all
are complete articles, four are live blogs. ``partial`` counts ``CleanArticle.partial``
and any page the stage rejected (nothing usable is not a full story either).

Run: .venv/bin/python bench/flags_eval.py [--show]   (--show lists every miss)
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
FUNDUS = ROOT.parent / "shared" / "data" / "extraction-dev" / "fundus-evaluation"
# Real live blogs among the fundus pages (their URLs and pages say so); the rest are stories.
FUNDUS_LIVE = {"TheIndependent_1", "TheIndependent_4", "TheTelegraph_1", "TheTelegraph_3"}


def predicted(result: object) -> set[str]:
    from processors.clean import CleanArticle

    if not isinstance(result, CleanArticle):
        return {"partial"}
    found = set(result.flags)
    if result.partial:
        found.add("partial")
    return found


def cases() -> list[tuple[str, str, dict[str, object], frozenset[str]]]:
    from tests.flag_pages import labelled_pages

    out = []
    for page in labelled_pages():
        out.append((page.name, page.url, {"html": page.html.encode(),
                                          "feed_summary": page.feed_summary,
                                          "feed_title": page.feed_title}, page.labels))
    truth = json.loads((FUNDUS / "ground_truth.json").read_text())
    for key, value in truth.items():
        name = key.removesuffix(".html.gz")
        raw = gzip.decompress((FUNDUS / "html" / key).read_bytes())
        labels = frozenset({"liveblog_index"}) if name in FUNDUS_LIVE else frozenset()
        out.append((f"fundus/{name}", value["url"], {"html": raw}, labels))
    return out


def main() -> None:
    from processors.clean import clean
    from tests.flag_pages import FLAGS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--show", action="store_true", help="list every miss")
    args = parser.parse_args()
    rows = []
    for name, url, kwargs, labels in cases():
        html = kwargs.pop("html")
        result = clean(html, url, content_type="text/html", **kwargs)  # type: ignore[arg-type]
        rows.append((name, labels, predicted(result) & set(FLAGS)))
    authored = sum(1 for n, _, _ in rows if not n.startswith("fundus/"))
    print(f"{len(rows)} pages ({authored} authored, {len(rows) - authored} fundus-evaluation)\n")
    print(f"{'flag':16} {'pos':>4} {'TP':>4} {'FP':>4} {'FN':>4} {'precision':>9} {'recall':>7}")
    for flag in FLAGS:
        tp = sum(1 for _, lab, pred in rows if flag in lab and flag in pred)
        fp = sum(1 for _, lab, pred in rows if flag not in lab and flag in pred)
        fn = sum(1 for _, lab, pred in rows if flag in lab and flag not in pred)
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn) if tp + fn else 1.0
        print(f"{flag:16} {tp + fn:4} {tp:4} {fp:4} {fn:4} {precision:9.3f} {recall:7.3f}")
    if args.show:
        print()
        for name, lab, pred in rows:
            if lab != pred:
                print(f"{name:40} expected={sorted(lab)} got={sorted(pred)}")


if __name__ == "__main__":
    main()
