"""Step cards: one self-contained HTML page per step (inline CSS, images as data URIs, no script).

The web UI shows HTML artifacts in a sandboxed frame; a card logged as ``<step>/card.html`` on the
recipe's run therefore reads there as it does in a browser or a notebook.
"""

from __future__ import annotations

import base64
import html
import time
from dataclasses import dataclass, field
from typing import Any

from markupsafe import Markup

__all__ = ["Card", "data_profile", "schema_table", "table"]


@dataclass
class _Section:
    title: str
    html: Markup


@dataclass
class Card:
    """A card being filled by a step; ``render`` makes the page."""

    recipe: str
    template: str
    profile: str | None
    step: str
    description: str
    key: str
    facts: list[tuple[str, str]] = field(default_factory=list)
    sections: list[_Section] = field(default_factory=list)
    verdict: str | None = None

    def fact(self, name: str, value: Any) -> None:
        """A one-line fact in the header (rows ingested, run id, version...)."""
        self.facts.append((name, str(value)))

    def add_html(self, title: str, trusted_html: str) -> None:
        """A section of HTML made by this package (already escaped)."""
        self.sections.append(_Section(title, Markup(trusted_html)))

    def add_table(self, title: str, frame: Any, max_rows: int = 50) -> None:
        """A section with a DataFrame or a list of dicts as a table."""
        self.add_html(title, table(frame, max_rows))

    def add_text(self, title: str, text: str) -> None:
        """A section of preformatted text (a traceback, a repr)."""
        self.add_html(title, f"<pre>{html.escape(text)}</pre>")

    def add_image(self, title: str, png: bytes) -> None:
        """A section with a PNG, inlined."""
        data = base64.b64encode(png).decode()
        self.add_html(title, f'<img alt="{html.escape(title)}" src="data:image/png;base64,{data}">')

    def render(self, status: str, duration: float, cache: str, started: float) -> str:
        """The card's HTML page."""
        from jinja2 import Environment, PackageLoader, select_autoescape

        env = Environment(
            loader=PackageLoader("tracklane.recipes", "cards"), autoescape=select_autoescape(["j2", "html"])
        )
        return env.get_template("card.html.j2").render(
            recipe=self.recipe,
            template=self.template,
            profile=self.profile,
            step=self.step,
            description=self.description,
            key=self.key,
            status=status,
            verdict=self.verdict,
            cache=cache,
            started=time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
            duration=duration,
            facts=self.facts,
            sections=self.sections,
        )


def table(frame: Any, max_rows: int = 50) -> str:
    """An escaped HTML table of a DataFrame (or of a list of dicts)."""
    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        frame = pd.DataFrame(list(frame))
    shown = frame.head(max_rows)
    out = str(shown.to_html(index=False, escape=True, border=0, float_format=lambda v: f"{v:.6g}"))
    if len(frame) > max_rows:
        out += f"<p>{len(frame) - max_rows} more rows not shown.</p>"
    return out


def schema_table(frame: Any) -> str:
    """Column names and types."""
    return table([{"column": str(c), "type": str(t)} for c, t in frame.dtypes.items()], max_rows=500)


def data_profile(frame: Any) -> str:
    """Per column: type, count, missing, distinct values, and numeric or most frequent values."""
    import pandas as pd

    rows = []
    for name in frame.columns:
        col = frame[name]
        row: dict[str, Any] = {
            "column": str(name),
            "type": str(col.dtype),
            "count": int(col.count()),
            "missing": int(col.isna().sum()),
            "distinct": int(col.nunique(dropna=True)),
        }
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            described = col.describe()
            for stat in ("mean", "std", "min", "50%", "max"):
                value = described.get(stat)
                row["median" if stat == "50%" else stat] = None if value is None else float(value)
        else:
            top = col.value_counts(dropna=True).head(3)
            row["most frequent"] = ", ".join(f"{k} ({v})" for k, v in top.items())
        rows.append(row)
    return table(rows, max_rows=500)
