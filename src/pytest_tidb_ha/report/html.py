"""``report.html``: one self-contained page per test (pure).

The artifacts folder travels as a CI download; whoever opens it must see the
picture and the verdicts without a server, a network or a second file, so the
SVG is inlined and the style is a few lines of CSS in the page. Every string
is escaped and redacted.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from ..redact import redact
from ..timeline import Event
from ..verdicts import Verdict
from .derive import fault_label, fault_nodes, history
from .summary import format_duration

_CSS = """
body{font-family:DejaVu Sans,Verdana,Arial,sans-serif;margin:16px;color:#222}
h1{font-size:18px;margin:0 0 4px} h2{font-size:15px;margin:18px 0 6px}
table{border-collapse:collapse;font-size:13px} td,th{border:1px solid #ccc;padding:3px 8px;
text-align:left;vertical-align:top} th{background:#f3f3f3}
.ok{color:#238b45;font-weight:bold} .bad{color:#cb181d;font-weight:bold}
.meta{color:#555;font-size:13px} .picture{overflow-x:auto;border:1px solid #ddd}
code{font-size:12px}
"""


def _e(text: object) -> str:
    return escape(redact(str(text)), quote=True)


def _table(headers: Sequence[str], rows: Sequence[str], empty: str) -> str:
    """A header row over pre-rendered ``<tr>`` rows, or a note saying there is nothing.

    One place decides how every table of the page looks, and that an empty section says so
    in words instead of showing a bare header.
    """
    if not rows:
        return f"<p class=\"meta\">{_e(empty)}</p>"
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    return f"<table><tr>{head}</tr>" + "".join(rows) + "</table>"


def render_html(*, title: str, nodeid: str, case_id: str | None, outcome: str,
                verdicts: Sequence[Verdict], events: Sequence[Event], svg: str,
                failure: str = "", notes: Sequence[str] = (),
                files: Sequence[str] = ()) -> str:
    """The page: header, verdict table, inline picture, fault windows, files."""
    h = history(events)
    rows = []
    for v in verdicts:
        cls = "ok" if v.ok else "bad"
        jid = "" if v.job_id is None else str(v.job_id)
        rows.append(f"<tr><td>{_e(v.job_key)}</td><td>{_e(v.kind)}</td><td>{_e(jid)}</td>"
                    f"<td class=\"{cls}\">{_e(v.verdict)}</td>"
                    f"<td>{_e(format_duration(v.duration))}</td><td>{_e(v.reason)}</td></tr>")
    verdict_table = _table(("job", "kind", "id", "verdict", "duration", "reason"), rows,
                           "No job verdicts were recorded.")
    faults = []
    for w in h.windows:
        primary, peers = fault_nodes(w)
        end = "open" if w.end is None else f"{w.end:.1f}s"
        roles_map = w.data.get("roles") or {}
        roles = ", ".join(f"{k}={v}" for k, v in roles_map.items()) \
            if isinstance(roles_map, dict) else str(roles_map)
        faults.append(f"<tr><td>{_e(w.fault_id)}</td><td>{_e(fault_label(w))}</td>"
                      f"<td>{_e(', '.join(primary))}</td><td>{_e(', '.join(peers))}</td>"
                      f"<td>{_e(roles)}</td><td>{w.start:.1f}s</td><td>{_e(end)}</td></tr>")
    fault_table = _table(("id", "fault", "nodes", "far side", "roles", "start", "end"), faults,
                         "No fault windows.")
    outcome_cls = "ok" if outcome == "passed" else "bad"
    parts = [
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">",
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f"<p class=\"meta\">node id <code>{_e(nodeid)}</code>"
        + (f" · case <code>{_e(case_id)}</code>" if case_id else "")
        + f" · test <span class=\"{outcome_cls}\">{_e(outcome)}</span></p>",
    ]
    if failure:
        parts.append(f"<p class=\"bad\">{_e(failure)}</p>")
    parts += ["<h2>Verdicts</h2>", verdict_table,
              "<h2>Timeline</h2>", f"<div class=\"picture\">{redact(svg)}</div>",
              "<h2>Fault windows</h2>", fault_table]
    if notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{_e(n)}</li>" for n in notes)
                     + "</ul>")
    if files:
        parts.append("<h2>Files</h2><ul>" + "".join(
            f"<li><a href=\"{_e(f)}\">{_e(f)}</a></li>" for f in files) + "</ul>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
