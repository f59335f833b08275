"""The one table writer of the studies: every table is a JSON document and a Markdown rendering of
it, with the data label (tf_scenes.datasets.provenance) in both and the paper's number beside ours
wherever the paper gives one.

    write_table(out, "table2", "Table 2: ...", columns=[Column("system", "system", text=True),
                Column("average", "average", paper="paper")], rows=rows, data=data.label,
                profile=cfg.profile, notes=["..."])

Rows are plain dicts; a column reads its value from a dotted path in the row ("ours.micro_ap") and,
with ``paper``, the paper's number from another path, shown in a column of its own beside ours
("-" where the paper gives none).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from tf_scenes.datasets.provenance import DataLabel


@dataclasses.dataclass(frozen=True)
class Column:
    """label: the header; key: dotted path of the value in a row; paper: dotted path of the paper's
    number (a "paper" column beside); fmt: format of numbers; text: a text column (left-aligned)."""

    label: str
    key: str
    paper: str | None = None
    fmt: str = "{:.2f}"
    text: bool = False


def lookup(row: Mapping, path: str | None) -> Any:
    """The value at a dotted path of a row (None when absent)."""
    if path is None:
        return None
    node: Any = row
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _cell(value, column: Column) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if column.text or isinstance(value, str):
        return str(value).replace("|", "\\|").replace("\n", " ")
    if isinstance(value, bool):
        return "yes" if value else "no"
    try:
        return column.fmt.format(value)
    except (ValueError, TypeError):
        return str(value)


def render_markdown(doc: Mapping, columns: Sequence[Column]) -> str:
    lines = [f"# {doc['title']}", ""]
    if doc.get("banner"):
        lines += [f"**{doc['banner']}.**", ""]
    lines.append(f"Data: {doc['data']}  ")
    profile = f"Profile: {doc['profile']}"
    if doc.get("description"):
        profile += f" ({doc['description']})"
    lines += [profile, ""]
    header, align = [], []
    for c in columns:
        header.append(c.label + (" ours" if c.paper else ""))
        align.append(":---" if c.text else "---:")
        if c.paper:
            header.append(f"{c.label} paper")
            align.append("---:")
    lines.append("| " + " | ".join(header) + " |")
    lines.append("| " + " | ".join(align) + " |")
    for row in doc["rows"]:
        cells = []
        for c in columns:
            cells.append(_cell(lookup(row, c.key), c))
            if c.paper:
                cells.append(_cell(lookup(row, c.paper), c))
        lines.append("| " + " | ".join(cells) + " |")
    notes = [n for n in doc.get("notes", ()) if n]
    if notes:
        lines.append("")
        lines += [f"{n}" if n.endswith((".", ")")) else f"{n}." for n in notes]
    return "\n".join(lines) + "\n"


def table_doc(title: str, columns: Sequence[Column], rows: Sequence[Mapping], *, data: DataLabel, profile: str,
              description: str = "", notes: Sequence[str] = (), **extra) -> dict:
    """The JSON document of a table (what write_table writes)."""
    return {"title": title, "profile": profile, "description": description, **data.as_dict(),
            "banner": data.banner, "columns": [c.label for c in columns], **extra,
            "rows": [dict(r) for r in rows], "notes": [n for n in notes if n]}


def write_table(out, name: str, title: str, columns: Sequence[Column], rows: Sequence[Mapping], *,
                data: DataLabel, profile: str, description: str = "", notes: Sequence[str] = (), **extra) -> dict:
    """Write ``out/name.json`` and ``out/name.md`` atomically; returns the JSON document."""
    from tf_scenes.io_utils import atomic_write_json, atomic_write_text

    doc = table_doc(title, columns, rows, data=data, profile=profile, description=description, notes=notes, **extra)
    atomic_write_json(Path(out) / f"{name}.json", doc)
    atomic_write_text(Path(out) / f"{name}.md", render_markdown(doc, columns))
    return doc
