"""HTML pieces of a report: escaped text, numbers, tables, inline SVG figures, the page with its inline CSS.

Nothing here loads anything from elsewhere: the CSS is inline, every figure is an inline ``<svg>`` (text kept as
text, so it is searchable), and links are in-page anchors only.
"""

from __future__ import annotations

import html
import io
import itertools
import math
import re
from collections.abc import Iterable, Sequence

import numpy as np


class Raw(str):
    """Markup that is already HTML (not escaped again by :func:`cell`)."""


def esc(value) -> str:
    return value if isinstance(value, Raw) else html.escape(str(value), quote=True)


def num(value, spec: str = ".6g") -> str:
    """A number as text: ``None`` (a JSON null: not finite when written) is ``n/a``; booleans are yes/no."""
    if value is None:
        return "n/a"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    return str(v) if not math.isfinite(v) else format(v, spec)


def interval(lo, hi, spec: str = ".6g") -> str:
    return f"[{num(lo, spec)}, {num(hi, spec)}]"


def cell(value) -> str:
    if isinstance(value, Raw):
        return value
    if isinstance(value, (float, np.floating, int, np.integer, bool, np.bool_)) or value is None:
        return esc(num(value))
    return esc(value)


def table(header: Sequence, rows: Iterable[Sequence], *, cls: str = "", caption: str | None = None) -> Raw:
    """A ``<table>``: numbers right-aligned (class ``n``), every cell escaped unless it is :class:`Raw`."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = []
    for row in rows:
        tds = []
        for v in row:
            numeric = isinstance(v, (float, np.floating, int, np.integer)) and not isinstance(v, (bool, np.bool_))
            tds.append(f'<td class="n">{cell(v)}</td>' if numeric else f"<td>{cell(v)}</td>")
        body.append("<tr>" + "".join(tds) + "</tr>")
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    klass = f' class="{esc(cls)}"' if cls else ""
    return Raw(f'<div class="tw"><table{klass}>{cap}<thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody>'
               f"</table></div>")


def pairs(items: Iterable[tuple[str, object]], cls: str = "kv") -> Raw:
    """A two-column table of ``(name, value)``."""
    rows = "".join(f"<tr><th>{esc(k)}</th><td>{cell(v)}</td></tr>" for k, v in items)
    return Raw(f'<div class="tw"><table class="{esc(cls)}"><tbody>{rows}</tbody></table></div>')


def para(text, cls: str = "") -> Raw:
    klass = f' class="{esc(cls)}"' if cls else ""
    return Raw(f"<p{klass}>{esc(text)}</p>")


def items(values: Iterable, cls: str = "") -> Raw:
    klass = f' class="{esc(cls)}"' if cls else ""
    return Raw(f"<ul{klass}>" + "".join(f"<li>{cell(v)}</li>" for v in values) + "</ul>")


_FIGURE_IDS = itertools.count(1)
_NAMESPACES = re.compile(r'\s+xmlns(:\w+)?="[^"]*"')
_METADATA = re.compile(r"<metadata>.*?</metadata>", re.S)


def svg(fig) -> Raw:
    """A matplotlib figure as inline SVG (then closed): text stays text, ids are unique on the page.

    The XML prologue, DOCTYPE, metadata and namespace declarations are dropped: an HTML parser knows ``<svg>``
    and ``xlink:href`` without them, and the page names no outside URL.
    """
    import matplotlib
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    try:
        with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "jaxscale"}):
            fig.savefig(buf, format="svg", bbox_inches="tight",
                        metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    finally:
        plt.close(fig)
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    text = _NAMESPACES.sub("", _METADATA.sub("", text))
    prefix = f"f{next(_FIGURE_IDS)}-"
    text = re.sub(r'\bid="', f'id="{prefix}', text)
    text = text.replace("url(#", f"url(#{prefix}").replace('href="#', f'href="#{prefix}')
    return Raw(text)


def figure(fig, caption: str) -> Raw:
    return Raw(f"<figure>{svg(fig)}<figcaption>{esc(caption)}</figcaption></figure>")


CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; margin: 0;
       background: #f4f5f7; color: #1d2330; line-height: 1.45; }
header, main { max-width: 1120px; margin: 0 auto; padding: 0 24px; }
header { padding-top: 20px; padding-bottom: 8px; }
h1 { font-size: 1.6em; margin: 0 0 4px; }
h2 { font-size: 1.25em; margin: 0 0 6px; border-bottom: 2px solid #3b6ea8; padding-bottom: 4px; }
h3 { font-size: 1.02em; margin: 18px 0 6px; color: #2d4f7c; }
section { background: #fff; border: 1px solid #d9dde3; border-radius: 8px; padding: 16px 20px; margin: 18px 0; }
.meta { color: #5a6270; font-size: 0.9em; }
nav ol { margin: 6px 0; padding-left: 22px; }
nav a { color: #2d4f7c; }
div.tw { max-width: 100%; overflow-x: auto; }
table { border-collapse: collapse; margin: 6px 0 10px; font-size: 0.88em; }
th, td { border: 1px solid #dde1e6; padding: 3px 8px; text-align: left; vertical-align: top; }
thead th { background: #eef2f7; }
td.n { text-align: right; font-variant-numeric: tabular-nums; font-family: "DejaVu Sans Mono", monospace; }
table.kv th { background: #f6f8fa; font-weight: 600; width: 15em; }
code, .fp { font-family: "DejaVu Sans Mono", monospace; font-size: 0.92em; word-break: break-all; }
figure { margin: 10px 0; display: inline-block; max-width: 100%; vertical-align: top; }
figure svg { max-width: 100%; height: auto; display: block; }
figcaption { font-size: 0.85em; color: #5a6270; }
.card { border: 2px solid #3b6ea8; border-radius: 8px; background: #f5f9ff; padding: 10px 14px; margin: 10px 0; }
.card h3 { margin-top: 2px; }
.card table.kv th { background: #e8f0fb; }
.ok { color: #1b7a3a; font-weight: 600; }
.warn { color: #a35200; font-weight: 600; }
.bad { color: #b3261e; font-weight: 600; }
ul.left-out li { color: #7a4b00; }
details summary { cursor: pointer; color: #2d4f7c; font-weight: 600; margin: 8px 0 4px; }
"""


def page(title: str, header: Raw, sections: Sequence[tuple[str, str, Raw]]) -> str:
    """The whole document: ``sections`` are ``(anchor, heading, body)``."""
    toc = "".join(f'<li><a href="#{esc(a)}">{esc(h)}</a></li>' for a, h, _ in sections)
    body = "".join(f'<section id="{esc(a)}"><h2>{esc(h)}</h2>{b}</section>' for a, h, b in sections)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title><style>{CSS}</style></head><body>"
            f"<header><h1>{esc(title)}</h1>{header}<nav><ol>{toc}</ol></nav></header>"
            f"<main>{body}</main></body></html>\n")
