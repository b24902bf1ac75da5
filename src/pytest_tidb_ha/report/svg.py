"""A tiny SVG writer: elements as escaped strings, numbers with fixed precision.

Why not a plotting library: the picture is lanes of rectangles, a few
polylines and text — twenty primitives. A writer this size is dependency-free
(the plugin runs in CI images we do not control), byte-for-byte deterministic
(two runs of the same history give the same file, so it can be committed and
diffed), and its output is plain XML that tests parse with ``xml.etree``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from xml.sax.saxutils import escape, quoteattr

SVG_NS = "http://www.w3.org/2000/svg"


def num(x: float) -> str:
    """Fixed one-decimal formatting without trailing zeros (deterministic output)."""
    s = f"{x:.1f}"
    if s.endswith(".0"):
        s = s[:-2]
    return "0" if s == "-0" else s


def _attrs(attrs: Mapping[str, object]) -> str:
    parts = []
    for k, v in attrs.items():
        if v is None or v is False:
            continue
        name = k.rstrip("_").replace("_", "-")
        val = num(v) if isinstance(v, float) else str(v)
        parts.append(f" {name}={quoteattr(val)}")
    return "".join(parts)


class Svg:
    """Append-only list of SVG elements; ``str()`` gives the document."""

    def __init__(self, width: float, height: float, *, title: str = "") -> None:
        self.width = width
        self.height = height
        self._defs: list[str] = []
        self._body: list[str] = []
        self._title = title

    # -- primitives --------------------------------------------------------------
    def raw(self, fragment: str) -> None:
        self._body.append(fragment)

    def define(self, fragment: str) -> None:
        self._defs.append(fragment)

    def open(self, tag: str = "g", **attrs: object) -> None:
        self._body.append(f"<{tag}{_attrs(attrs)}>")

    def close(self, tag: str = "g") -> None:
        self._body.append(f"</{tag}>")

    def rect(self, x: float, y: float, w: float, h: float, *, tooltip: str = "",
             **attrs: object) -> None:
        a = _attrs({"x": float(x), "y": float(y), "width": float(max(w, 0.0)),
                    "height": float(max(h, 0.0)), **attrs})
        if tooltip:
            self._body.append(f"<rect{a}><title>{escape(tooltip)}</title></rect>")
        else:
            self._body.append(f"<rect{a}/>")

    def line(self, x1: float, y1: float, x2: float, y2: float, **attrs: object) -> None:
        self._body.append(f"<line{_attrs({'x1': float(x1), 'y1': float(y1), 'x2': float(x2), 'y2': float(y2), **attrs})}/>")

    def polyline(self, points: Iterable[tuple[float, float]], **attrs: object) -> None:
        pts = " ".join(f"{num(x)},{num(y)}" for x, y in points)
        if pts:
            self._body.append(f"<polyline{_attrs({'points': pts, 'fill': 'none', **attrs})}/>")

    def text(self, x: float, y: float, content: str, *, tooltip: str = "",
             **attrs: object) -> None:
        a = _attrs({"x": float(x), "y": float(y), **attrs})
        inner = escape(content)
        if tooltip:
            inner += f"<title>{escape(tooltip)}</title>"
        self._body.append(f"<text{a}>{inner}</text>")

    def mark(self) -> int:
        """A position in the body, to :meth:`insert` elements drawn later *behind*
        what follows (SVG paints in document order)."""
        return len(self._body)

    def insert(self, mark: int, other: Svg) -> None:
        self._body[mark:mark] = other._body
        self._defs.extend(d for d in other._defs if d not in self._defs)

    def resize(self, height: float) -> None:
        self.height = height

    # -- output ------------------------------------------------------------------
    def __str__(self) -> str:
        head = (f'<svg xmlns="{SVG_NS}" width="{num(self.width)}" height="{num(self.height)}" '
                f'viewBox="0 0 {num(self.width)} {num(self.height)}" '
                'font-family="DejaVu Sans, Verdana, Arial, sans-serif" font-size="11">')
        parts = [head]
        if self._title:
            parts.append(f"<title>{escape(self._title)}</title>")
        if self._defs:
            parts.append("<defs>" + "".join(self._defs) + "</defs>")
        parts.extend(self._body)
        parts.append("</svg>")
        return "\n".join(parts) + "\n"


def text_width(text: str, font_size: float = 10.0) -> float:
    """Rough width of *text* in px (average glyph ~0.6 em) — good enough to decide
    whether a label fits inside a window."""
    return len(text) * font_size * 0.6
