"""Build the offline world map of the search page (``indexer/static/world-land.json``).

The page draws locations on an equirectangular SVG (x = longitude, y = -latitude), so the
land outline must be in the same plain lat/lon grid. It comes from the GLOBE 1-km land mask
shipped by the PyPI package ``global-land-mask`` (MIT; GLOBE data by NOAA, public domain),
reduced to cells of ``step`` degrees and written as one SVG path of horizontal land runs.

Only needed to regenerate the asset (it is committed); the server never imports this:
    pip install global-land-mask==1.0.0
    .venv/bin/python -m indexer.web_worldmap [STEP_DEGREES]
"""

from __future__ import annotations

import json
import sys
from importlib.util import find_spec
from pathlib import Path

OUT = Path(__file__).with_name("static") / "world-land.json"


def land_runs(mask_rows: list[list[bool]]) -> list[tuple[int, int, int]]:
    """(row, first column, length) of every horizontal run of land cells."""
    runs = []
    for r, row in enumerate(mask_rows):
        c = 0
        while c < len(row):
            if row[c]:
                start = c
                while c < len(row) and row[c]:
                    c += 1
                runs.append((r, start, c - start))
            else:
                c += 1
    return runs


def runs_to_path(runs: list[tuple[int, int, int]], step: float) -> str:
    # Each run is a rectangle in map units: x from -180, y from -90 (north up, y = -lat).
    def num(v: float) -> str:
        return f"{v:.2f}".rstrip("0").rstrip(".")

    parts = []
    for r, c, n in runs:
        x = -180 + c * step
        y = -90 + r * step
        parts.append(f"M{num(x)} {num(y)}h{num(n * step)}v{num(step)}h{num(-n * step)}z")
    return "".join(parts)


def build(step: float = 1.0) -> dict[str, object]:
    import numpy as np

    spec = find_spec("global_land_mask")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("pip install global-land-mask==1.0.0 first")
    package_dir = Path(list(spec.submodule_search_locations)[0])
    data = np.load(package_dir / "globe_combined_mask_compressed.npz")
    mask, lat = data["mask"], data["lat"]  # (21600, 43200), rows from lat[0]
    if lat[0] < lat[-1]:  # make row 0 the northernmost
        mask = mask[::-1]
    rows, cols = int(round(180 / step)), int(round(360 / step))
    # Sample a sub-grid (every ~3 km) and call a cell land when most of its samples are land.
    per = 8
    sub = mask[:: mask.shape[0] // (rows * per), :: mask.shape[1] // (cols * per)]
    sub = sub[: rows * per, : cols * per].reshape(rows, per, cols, per).mean(axis=(1, 3))
    land = (sub >= 0.4).tolist()
    return {
        "source": "GLOBE 1-km land mask (NOAA, public domain) via PyPI global-land-mask 1.0.0",
        "projection": "equirectangular; x = lon, y = -lat; viewBox -180 -90 360 180",
        "step": step,
        "path": runs_to_path(land_runs(land), step),
    }


def main(argv: list[str]) -> int:
    step = float(argv[0]) if argv else 1.0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(build(step), separators=(",", ":")) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
