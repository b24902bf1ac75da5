"""The timeline picture: what broke when, and what each job was doing (pure, SVG).

Layout (time on x, shared by every section):

* **nodes** — one lane per node; every fault window shaded and labelled on the
  node it acts on (``kill``, ``partition pd-0 ⟂ pd-1,pd-2``, ``delay 1s``), the
  far side of a partition shaded lighter; overlapping windows stack in sub-rows.
* **jobs** — one lane per job: state bands (queueing, running labelled with the
  schema state or import step, rollback, synced/failed), ROW_COUNT as a line,
  the verdict on the right; a ``stuck`` job is hatched from its last progress and
  marked where the verdict was decided.
* **workload** — tps as a line and errors per second as bars, with the fault
  windows shaded behind them, as Jepsen's performance plots do.

Every fault window is also shaded faintly across all lanes so a reader can
follow a window down from the node to the job that stalled under it.
Ticks adapt to the span (``2s`` steps for an 18-second scaled case, ``5m``
for a 30-minute one). Elements carry ``class``/``data-*`` attributes so tests
(and curious users) can find lanes and windows in the XML.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..redact import redact
from ..timeline import Event
from ..verdicts import Verdict
from .derive import History, JobTrack, NodeFault, fault_nodes, history
from .svg import Svg, num, text_width

# -- geometry ----------------------------------------------------------------------
WIDTH = 1200
LEFT = 150  # lane labels
RIGHT = 170  # verdicts / scale notes
TOP = 56
NODE_ROW = 18
JOB_LANE = 30
WORKLOAD_H = 110
SECTION_GAP = 22
LANE_GAP = 3

FAULT_COLOURS: Mapping[str, str] = {
    "network_partition": "#e6550d",
    "network_delay": "#756bb1",
    "network_loss": "#9e9ac8",
    "kill": "#d62728",
    "restart": "#e377c2",
    "pause": "#8c6d31",
    "io_delay": "#17becf",
    "pd_leader_resign": "#7f7f7f",
    "ddl_owner_resign": "#7f7f7f",
}
BAND_COLOURS: Mapping[str, str] = {
    "queueing": "#bdbdbd",
    "running": "#6baed6",
    "rollback": "#fd8d3c",
    "paused": "#bcbd22",
    "done": "#74c476",
    "failed": "#de2d26",
    "other": "#e0e0e0",
}
#: Schema states get shades of the running colour so the steps are told apart.
RUNNING_SHADES: Mapping[str, str] = {
    "delete only": "#c6dbef",
    "write only": "#9ecae1",
    "write reorg": "#4292c6",
    "importing": "#4292c6",
    "encode&sort": "#6baed6",
    "global-sorting": "#6baed6",
    "validating": "#2171b5",
    "post-process": "#2171b5",
}
VERDICT_COLOURS: Mapping[str, str] = {
    "converged": "#238b45",
    "failed-sensible": "#b8860b",
    "failed-unexpected": "#cb181d",
    "stuck": "#cb181d",
    "timed-out": "#d94801",
    "cancel-ineffective": "#cb181d",
}
TICK_STEPS = (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600,
              7200, 10800, 21600)


def fault_colour(kind: str) -> str:
    return FAULT_COLOURS.get(kind, "#969696")


# -- time axis ---------------------------------------------------------------------

def tick_step(span: float, max_ticks: int = 12) -> float:
    """The smallest 'nice' step giving at most *max_ticks* ticks over *span*."""
    for step in TICK_STEPS:
        if span / step <= max_ticks:
            return float(step)
    return float(TICK_STEPS[-1])


def tick_label(t: float, step: float) -> str:
    """``1.5s`` / ``12s`` for short spans; ``5m`` / ``2m30s`` / ``1h05m`` for long ones."""
    if step < 1:
        return f"{t:.1f}s"
    if step < 60:
        return f"{t:g}s" if t < 120 or step < 30 else _minutes(t)
    return _minutes(t)


def _minutes(t: float) -> str:
    total = round(t)
    h, rem = divmod(total, 3600)
    m, s = divmod(rem, 60)
    if h:
        return f"{h}h{m:02d}m" if not s else f"{h}h{m:02d}m{s:02d}s"
    if not m:
        return f"{s}s"
    return f"{m}m" if not s else f"{m}m{s:02d}s"


def ticks(start: float, end: float, max_ticks: int = 12) -> list[tuple[float, str]]:
    span = max(end - start, 1e-6)
    step = tick_step(span, max_ticks)
    first = step * int(start // step)
    out = []
    t = first
    while t <= end + 1e-9:
        if t >= start - 1e-9:
            out.append((round(t, 6), tick_label(round(t, 6), step)))
        t += step
    return out


# -- rendering ---------------------------------------------------------------------

@dataclass(frozen=True)
class _Frame:
    start: float
    end: float
    x0: float = LEFT
    x1: float = WIDTH - RIGHT

    def x(self, t: float) -> float:
        span = max(self.end - self.start, 1e-9)
        t = min(max(t, self.start), self.end)
        return self.x0 + (t - self.start) / span * (self.x1 - self.x0)


def _candidates(label: str) -> list[str]:
    """Shorter and shorter forms of a label, most informative first."""
    out = [label]
    head, sep, tail = label.partition(" ⟂ ")
    words = head.split(" ")
    if sep:
        out += [f"{words[0]} ⟂ {tail}" if tail == "all" else head, words[0], "⟂"]
    else:
        out += [words[0]]
    return out


def _fit(label: str, width: float, font: float = 10.0) -> str:
    """The longest readable form of *label* that fits in *width* px ('' if none)."""
    for cand in _candidates(label):
        if cand and text_width(cand, font) <= width - 4:
            return cand
    return ""


def _compress_partition(label: str, nf: NodeFault, all_nodes: Sequence[str]) -> str:
    """``partition tikv-1 ⟂ pd-0,…`` → ``partition tikv-1 ⟂ all`` when it is everyone."""
    primary, peers = fault_nodes(nf.window)
    others = [n for n in all_nodes if n not in primary]
    if nf.window.kind == "network_partition" and peers and sorted(peers) == sorted(others):
        return f"partition {','.join(primary)} ⟂ all"
    return label


def _window_tooltip(nf: NodeFault, label: str) -> str:
    w = nf.window
    end = "still open" if w.end is None else f"{w.end:.1f}s"
    side = "" if nf.primary else " (far side)"
    return f"{label}{side}: {w.start:.1f}s → {end} [{w.fault_id}]"


def render(events: Sequence[Event], *, verdicts: Sequence[Verdict] = (), title: str = "",
           time_scale: float = 1.0, end: float | None = None, cluster: str = "") -> str:
    """The SVG document for one test's history (deterministic for equal input)."""
    h = history(events, end)
    verdict_by_key = {v.job_key: v for v in verdicts}
    jobs = list(h.jobs)
    known = {j.job_key for j in jobs}
    jobs += [JobTrack(v.job_key, v.kind, v.job_id, v.started_at, (), (), v.verdict,
                      v.decided_at, v.reason) for v in verdicts
             if v.job_key not in known and v.job_key.partition("/")[0] not in known]
    frame = _Frame(h.start, max(h.end, h.start + 1.0))

    node_rows = {n: 1 + max((nf.row for nf in h.per_node.get(n, [])), default=0)
                 for n in h.nodes}

    svg = Svg(WIDTH, 0, title=redact(title or "tidb-ha timeline"))
    svg.define('<pattern id="stuck-hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
               'patternTransform="rotate(45)"><rect width="3" height="6" fill="#cb181d" '
               'fill-opacity="0.55"/></pattern>')
    backdrop = svg.mark()
    _header(svg, h, jobs, verdicts, title, time_scale, cluster)
    behind = svg.mark()

    plot_top = float(TOP)
    y = plot_top
    if h.nodes:
        y = _nodes(svg, frame, h, node_rows, y)
    if jobs:
        y = _jobs(svg, frame, h, jobs, verdict_by_key, y)
    if h.workload:
        y = _workload(svg, frame, h, y)
    if y == plot_top:
        svg.text(frame.x0, y + 24, "no events recorded", fill="#636363")
        y += 40
    plot_bottom = y
    _axis(svg, frame, plot_bottom, time_scale, h.t0)
    scaled = case_row(time_scale, h.t0)
    _legend(svg, h, jobs, plot_bottom + (60 if scaled else 48))
    height = plot_bottom + (74 if scaled else 62)
    svg.resize(height)

    # Drawn last, inserted first: the faint shading of every fault window across
    # the whole plot and the tick grid, behind the lanes.
    back = Svg(WIDTH, height)
    back.open("g", class_="windows-background")
    for w in h.windows:
        x0 = frame.x(w.start)
        x1 = frame.x(w.end if w.end is not None else frame.end)
        back.rect(x0, plot_top, max(x1 - x0, 1.0), plot_bottom - plot_top,
                  fill=fault_colour(w.kind), fill_opacity="0.08", data_fault_id=w.fault_id)
    back.close("g")
    _grid(back, frame, plot_top, plot_bottom, time_scale, h.t0)
    svg.insert(behind, back)
    page = Svg(WIDTH, height)
    page.rect(0, 0, WIDTH, height, fill="#ffffff")
    svg.insert(backdrop, page)
    return str(svg)


def _header(svg: Svg, h: History, jobs: Sequence[JobTrack], verdicts: Sequence[Verdict],
            title: str, time_scale: float, cluster: str) -> None:
    svg.text(10, 20, redact(title or "tidb-ha timeline"), font_size="14", font_weight="bold")
    parts = [redact(cluster)] if cluster else []
    parts += [f"{len(h.windows)} fault window(s)", f"{len(jobs)} job(s)"]
    names = [str(v.verdict) for v in verdicts] or [
        n for j in jobs for n in [j.verdict or "?", *(x[1] for x in j.extra_verdicts)]]
    if names:
        parts.append("verdicts: " + ", ".join(names))
    if h.start >= 1.0:
        parts.append(f"set-up 0-{h.start:.0f}s not drawn")
    if time_scale != 1.0:
        parts.append(f"time scale {time_scale:g}")
    svg.text(10, 38, " · ".join(parts), fill="#404040")


def _grid(svg: Svg, frame: _Frame, top: float, bottom: float, time_scale: float,
          t0: float | None) -> None:
    svg.open("g", class_="grid")
    for t, _, _ in axis_ticks(frame.start, frame.end, time_scale, t0):
        x = frame.x(t)
        svg.line(x, top, x, bottom, stroke="#e5e5e5", stroke_width="1")
    svg.close("g")


def _section_title(svg: Svg, y: float, text: str) -> None:
    svg.text(10, y + 12, text, font_weight="bold", fill="#252525", class_="section-title")


def _nodes(svg: Svg, frame: _Frame, h: History, rows: Mapping[str, int], y: float) -> float:
    _section_title(svg, y, "nodes")
    y += SECTION_GAP
    for i, node in enumerate(h.nodes):
        lane_h = rows[node] * NODE_ROW
        svg.open("g", class_="lane node", data_node=node)
        svg.rect(frame.x0, y, frame.x1 - frame.x0, lane_h,
                 fill="#f7f7f7" if i % 2 == 0 else "#ffffff", class_="lane-bg")
        role = h.roles.get(node, "")
        svg.text(LEFT - 8, y + NODE_ROW / 2 + 4, node, text_anchor="end",
                 font_weight="bold" if role else None, class_="lane-label",
                 tooltip=role or node)
        if role:
            svg.text(LEFT - 8 - text_width(node, 11) - 6, y + NODE_ROW / 2 + 4, f"({role})",
                     text_anchor="end", fill="#737373", font_size="9")
        for nf in h.per_node.get(node, []):
            w = nf.window
            x0 = frame.x(w.start)
            x1 = frame.x(w.end if w.end is not None else frame.end)
            ry = y + nf.row * NODE_ROW + 1
            label = _compress_partition(nf.label, nf, h.nodes)
            shown = label if nf.primary else f"⟂ {', '.join(fault_nodes(w)[0])}"
            colour = fault_colour(w.kind)
            svg.rect(x0, ry, max(x1 - x0, 1.5), NODE_ROW - 2,
                     fill=colour, fill_opacity="0.85" if nf.primary else "0.35",
                     class_="fault primary" if nf.primary else "fault peer",
                     data_fault_id=w.fault_id, data_kind=w.kind, data_label=label,
                     tooltip=_window_tooltip(nf, label))
            fitted = _fit(shown, x1 - x0)
            if fitted:
                svg.text(x0 + 3, ry + NODE_ROW - 6, fitted, font_size="10",
                         fill="#ffffff" if nf.primary else "#3a3a3a", class_="fault-label")
            if w.end is None:
                svg.text(x1 - 2, ry + NODE_ROW - 6, "open", font_size="9",
                         text_anchor="end", fill="#ffffff")
        svg.close("g")
        y += lane_h + LANE_GAP
    for err in h.errors:  # apply/heal failures: a red cross on top of the nodes section
        x = frame.x(err.t)
        svg.text(x, TOP + SECTION_GAP - 4, "✖", fill="#cb181d", text_anchor="middle",
                 class_="fault-error", tooltip=f"{err.phase} {err.fault_id}: {err.error}")
    return y + SECTION_GAP / 2


def _band_colour(cat: str, label: str) -> str:
    if cat == "running":
        return RUNNING_SHADES.get(label, BAND_COLOURS["running"])
    return BAND_COLOURS.get(cat, BAND_COLOURS["other"])


def _jobs(svg: Svg, frame: _Frame, h: History, jobs: Sequence[JobTrack],
          verdicts: Mapping[str, Verdict], y: float) -> float:
    _section_title(svg, y, "jobs")
    y += SECTION_GAP
    for job in jobs:
        v = verdicts.get(job.job_key)
        verdict = v.verdict if v else job.verdict
        reason = v.reason if v else job.reason
        decided = v.decided_at if v and v.decided_at is not None else job.verdict_t
        svg.open("g", class_="lane job", data_job=job.job_key, data_verdict=verdict or "")
        svg.rect(frame.x0, y, frame.x1 - frame.x0, JOB_LANE, fill="#fafafa", class_="lane-bg")
        svg.text(LEFT - 8, y + 13, job.title, text_anchor="end", font_weight="bold",
                 class_="lane-label", tooltip=job.job_key)
        svg.text(LEFT - 8, y + 25, job.job_key, text_anchor="end", font_size="9",
                 fill="#737373")
        for b in job.bands:
            x0, x1 = frame.x(b.start), frame.x(b.end)
            svg.rect(x0, y + 2, max(x1 - x0, 1.0), JOB_LANE - 4, fill=_band_colour(b.category, b.label),
                     class_=f"band {b.category}", data_state=b.label,
                     tooltip=f"{b.label}: {b.start:.1f}s → {b.end:.1f}s")
            fitted = _fit(b.label, x1 - x0)
            if fitted:
                dark = b.category in ("failed", "rollback")
                svg.text(x0 + 3, y + 13, fitted, font_size="10",
                         fill="#ffffff" if dark else "#08306b", class_="band-label")
        if verdict == "stuck" and job.bands:
            since = job.progress_before(decided)
            since = job.bands[-1].start if since is None else since
            x0 = frame.x(since)
            svg.rect(x0, y + 2, max(frame.x1 - x0, 1.0), JOB_LANE - 4, fill="url(#stuck-hatch)",
                     class_="stuck", tooltip=f"no progress since {since:.1f}s")
        if verdict == "stuck" and decided is not None:
            x = frame.x(decided)
            svg.line(x, y, x, y + JOB_LANE, stroke="#cb181d", stroke_width="2",
                     stroke_dasharray="4,2", class_="stuck-marker")
            right = frame.x1 - x > text_width("STUCK", 10) + 6
            svg.text(x + 3 if right else x - 3, y + JOB_LANE - 5, "STUCK", font_size="10",
                     font_weight="bold", fill="#cb181d",
                     text_anchor="start" if right else "end", class_="stuck-label",
                     tooltip=f"verdict stuck decided at {decided:.1f}s")
        _rows_line(svg, frame, job, y)
        for t in job.cancels:
            x = frame.x(t)
            svg.line(x, y + 1, x, y + JOB_LANE - 1, stroke="#252525", stroke_width="1.5",
                     class_="cancel-marker")
            svg.text(x + 2, y + 9, "cancel", font_size="8", fill="#252525",
                     tooltip=f"ADMIN CANCEL at {t:.1f}s")
        colour = VERDICT_COLOURS.get(verdict or "", "#525252")
        svg.text(frame.x1 + 8, y + 13, verdict or "(no verdict)", font_weight="bold",
                 fill=colour, class_="verdict", tooltip=redact(reason or ""))
        extra = [x for x in job.extra_verdicts]
        extra += [(k, str(v.verdict), v.decided_at) for k, v in verdicts.items()
                  if k.partition("/")[0] == job.job_key and k != job.job_key
                  and all(k != e[0] for e in job.extra_verdicts)]
        if extra:
            text = ", ".join(vd if vd.startswith(k.partition("/")[2]) else
                             f"{k.partition('/')[2]}: {vd}" for k, vd, _ in extra)
            svg.text(frame.x1 + 8, y + 25, text, font_size="9", font_weight="bold",
                     fill=VERDICT_COLOURS.get(extra[0][1], "#525252"), class_="verdict-extra")
        elif job.rows:
            svg.text(frame.x1 + 8, y + 25, f"rows {max(r for _, r in job.rows):,}",
                     font_size="9", fill="#525252")
        svg.close("g")
        y += JOB_LANE + LANE_GAP
    return y + SECTION_GAP / 2


def _rows_line(svg: Svg, frame: _Frame, job: JobTrack, y: float) -> None:
    """ROW_COUNT as a step line inside the lane (lane bottom = 0, top = max)."""
    if not job.rows:
        return
    peak = max(r for _, r in job.rows) or 1
    base = y + JOB_LANE - 3
    span = JOB_LANE - 8

    def ry(n: int) -> float:
        return base - n / peak * span

    pts: list[tuple[float, float]] = []
    for t, n in job.rows:
        x = frame.x(t)
        if pts:
            pts.append((x, pts[-1][1]))
        pts.append((x, ry(n)))
    last_t = job.bands[-1].end if job.bands else job.rows[-1][0]
    pts.append((frame.x(last_t), pts[-1][1]))
    svg.polyline(pts, stroke="#08306b", stroke_width="1.5", class_="row-count")


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    for m in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10000,
              20000, 50000, 100000, 200000, 500000, 1000000):
        if v <= m:
            return float(m)
    return float(v)


def _workload(svg: Svg, frame: _Frame, h: History, y: float) -> float:
    _section_title(svg, y, "workload")
    y += SECTION_GAP
    top, bottom = y, y + WORKLOAD_H
    chart_h = bottom - top
    svg.open("g", class_="workload")
    svg.rect(frame.x0, top, frame.x1 - frame.x0, chart_h, fill="#ffffff", stroke="#d9d9d9",
             class_="lane-bg")
    for w in h.windows:  # Jepsen style: fault windows behind the throughput
        x0 = frame.x(w.start)
        x1 = frame.x(w.end if w.end is not None else frame.end)
        svg.rect(x0, top, max(x1 - x0, 1.0), chart_h, fill=fault_colour(w.kind),
                 fill_opacity="0.22", class_="fault-shade", data_fault_id=w.fault_id)
    tps_max = _nice_max(max(p.tps for p in h.workload))
    err_max = _nice_max(max(p.errors for p in h.workload))
    bar_w = max((frame.x1 - frame.x0) / max(len(h.workload), 1) * 0.8, 1.0)
    for p in h.workload:
        if p.errors:
            bh = p.errors / err_max * (chart_h * 0.45)
            svg.rect(frame.x(p.t) - bar_w / 2, bottom - bh, bar_w, bh, fill="#cb181d",
                     fill_opacity="0.8", class_="errors",
                     tooltip=f"{p.t:.1f}s: {p.errors} errors")
    svg.polyline([(frame.x(p.t), bottom - p.tps / tps_max * (chart_h - 4)) for p in h.workload],
                 stroke="#1f77b4", stroke_width="1.5", class_="tps")
    if len(h.workload) <= 120:  # a scaled run has few samples: show each one
        for p in h.workload:
            svg.raw(f'<circle cx="{num(frame.x(p.t))}" '
                    f'cy="{num(bottom - p.tps / tps_max * (chart_h - 4))}" r="2" '
                    'fill="#1f77b4"/>')
    svg.text(LEFT - 8, top + 10, f"{tps_max:g} tps", text_anchor="end", font_size="9",
             fill="#1f77b4")
    svg.text(LEFT - 8, bottom, "0", text_anchor="end", font_size="9", fill="#525252")
    svg.text(frame.x1 + 8, top + 10, "tps", fill="#1f77b4", font_weight="bold")
    svg.text(frame.x1 + 8, top + 24, f"errors/s (max {err_max:g})", fill="#cb181d",
             font_size="10")
    total_errors = sum(p.errors for p in h.workload)
    svg.text(frame.x1 + 8, top + 38, f"{total_errors:,} errors total", fill="#525252",
             font_size="9")
    svg.close("g")
    return bottom + 4


def case_row(time_scale: float, t0: float | None) -> bool:
    """Whether the axis gets a second row in case time (scaled, or t0 not at 0)."""
    return time_scale not in (0.0, 1.0) or (t0 is not None and t0 > 0.5)


def axis_ticks(start: float, end: float, time_scale: float,
               t0: float | None) -> list[tuple[float, str, str]]:
    """``(t, first row, second row)`` per tick.

    With a case row (scaled run, or t0 after the test start) the ticks sit on
    round *case* times from t0 — what a QA engineer thinks in ("the window at
    6m") — and the second row gives the timeline second (``t`` in
    timeline.json and the log lines). Otherwise round timeline seconds.
    """
    if not case_row(time_scale, t0):
        return [(t, label, "") for t, label in ticks(start, end)]
    zero = t0 if t0 is not None else 0.0
    scale = time_scale or 1.0
    c_start, c_end = max(0.0, (start - zero) / scale), (end - zero) / scale
    if c_end <= c_start:
        return [(t, label, "") for t, label in ticks(start, end)]
    out = []
    for c, label in ticks(c_start, c_end):
        t = zero + c * scale
        out.append((t, label, f"{t:.1f}s" if t < 100 else f"{t:.0f}s"))
    return out


def _axis(svg: Svg, frame: _Frame, y: float, time_scale: float, t0: float | None) -> None:
    svg.open("g", class_="axis")
    svg.line(frame.x0, y, frame.x1, y, stroke="#525252")
    second = case_row(time_scale, t0)
    for t, first, below in axis_ticks(frame.start, frame.end, time_scale, t0):
        x = frame.x(t)
        svg.line(x, y, x, y + 4, stroke="#525252")
        svg.text(x, y + 16, first, text_anchor="middle", font_size="10", class_="tick")
        if below:
            svg.text(x, y + 28, below, text_anchor="middle", font_size="9", fill="#969696",
                     class_="timeline-tick")
    if second:
        if t0 is not None and frame.start <= t0 <= frame.end:
            x = frame.x(t0)
            svg.line(x, y - 6, x, y + 6, stroke="#252525", stroke_width="2", class_="t0")
        svg.text(frame.x0 - 18, y + 16, "case time", text_anchor="end", font_size="9",
                 fill="#252525")
        svg.text(frame.x0 - 18, y + 28, "timeline t", text_anchor="end", font_size="9",
                 fill="#969696")
        unit = (f"case time from t0 (nemesis/workload start) at time scale {time_scale:g}; "
                "timeline t as in timeline.json and the log")
    else:
        unit = "seconds since the test started (t in timeline.json)"
    svg.text(frame.x1, y + (42 if second else 30), unit, text_anchor="end", font_size="10",
             fill="#525252")
    svg.close("g")


def _legend(svg: Svg, h: History, jobs: Sequence[JobTrack], y: float) -> None:
    x = float(LEFT)
    items: list[tuple[str, str]] = []
    for kind in sorted({w.kind for w in h.windows}):
        items.append((fault_colour(kind), kind.replace("_", " ")))
    cats = sorted({b.category for j in jobs for b in j.bands})
    items += [(BAND_COLOURS[c], c) for c in cats if c in BAND_COLOURS]
    if any(j.rows for j in jobs):
        items.append(("#08306b", "ROW_COUNT"))
    if any(j.verdict == "stuck" for j in jobs):
        items.append(("url(#stuck-hatch)", "stuck (no progress)"))
    if h.workload:
        items += [("#1f77b4", "tps"), ("#cb181d", "errors/s")]
    svg.open("g", class_="legend")
    for colour, label in items:
        svg.rect(x, y - 9, 10, 10, fill=colour, stroke="#bdbdbd", stroke_width="0.5")
        svg.text(x + 14, y, label, font_size="10")
        x += 14 + text_width(label, 10) + 16
    svg.close("g")


__all__ = ["num", "render", "tick_label", "tick_step", "ticks"]
