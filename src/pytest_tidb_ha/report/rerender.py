"""Re-draw a kept artifacts folder from its JSON files.

``python -m pytest_tidb_ha.report.rerender FOLDER [OUT.svg] [--time-scale S]``

The JSON files are the record of truth; the picture is derived. Re-drawing
lets a newer plugin improve an old run's picture, and lets a real run's
picture replace ``docs/timeline-example.svg`` without running it again.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..timeline import Event
from ..verdicts import Verdict
from .artifacts import TIMELINE_JSON, TIMELINE_SVG, VERDICTS_JSON
from .picture import render


def load_events(data: dict[str, Any]) -> list[Event]:
    out = []
    for raw in data.get("events", []):
        d = dict(raw)
        t = float(d.pop("t", 0.0))
        wall = float(d.pop("wall", 0.0))
        kind = str(d.pop("kind", ""))
        out.append(Event(t=t, wall=wall, kind=kind, data=d))
    return out


def load_verdicts(data: dict[str, Any]) -> list[Verdict]:
    return [Verdict(job_key=v["job_key"], kind=v.get("kind", ""), job_id=v.get("job_id"),
                    verdict=v["verdict"], reason=v.get("reason", ""), ok=bool(v.get("ok")),
                    evidence=v.get("evidence") or {}, started_at=v.get("started_at"),
                    decided_at=v.get("decided_at"))
            for v in data.get("verdicts", [])]


def rerender(folder: Path, *, time_scale: float | None = None, title: str | None = None) -> str:
    """The SVG of a kept folder; the time scale defaults to the one the run recorded."""
    timeline = json.loads((folder / TIMELINE_JSON).read_text(encoding="utf-8"))
    verdicts_path = folder / VERDICTS_JSON
    verdicts = (load_verdicts(json.loads(verdicts_path.read_text(encoding="utf-8")))
                if verdicts_path.exists() else [])
    events = load_events(timeline)
    scale = time_scale
    if scale is None:
        scale = timeline.get("time_scale") or next(
            (float(e.data["scale"]) for e in events
             if e.kind == "nemesis.start" and "scale" in e.data), 1.0)
    end = timeline.get("t_end")
    return render(events, verdicts=verdicts, time_scale=float(scale),
                  end=float(end) if end is not None else None,
                  title=title or timeline.get("case_id") or timeline.get("nodeid") or "",
                  cluster=timeline.get("cluster") or "")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pytest_tidb_ha.report.rerender",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path, help="a test's artifacts folder")
    ap.add_argument("out", type=Path, nargs="?", help=f"default: FOLDER/{TIMELINE_SVG}")
    ap.add_argument("--time-scale", type=float, default=None,
                    help="the run's --ha-time-scale (default: as recorded in timeline.json)")
    ap.add_argument("--title", default=None)
    args = ap.parse_args(argv)
    svg = rerender(args.folder, time_scale=args.time_scale, title=args.title)
    (args.out or args.folder / TIMELINE_SVG).write_text(svg, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
