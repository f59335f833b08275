"""Paper numbers of Hu et al. 2021 and the tables that put ours beside them (JSON + Markdown).

Paper numbers are the ones the spec records (specs/two_stage_asc.md, "Paper tables"): average
accuracies only (per-device-group numbers of the paper are not recorded, so only "average" gets a
"paper" column).  Table 3 (augmentation ablation) lists row names only.

A table row is a plain dict::

    {"key": "resnet", "system": "ResNet", "ours": {"A": 0.87, "B&C": 0.81, ..., "average": 0.79},
     "paper": {"average": 0.746}, "note": ""}

All accuracies are fractions in [0, 1] (JSON); Markdown shows percentages with one decimal.
``ours`` may also be a flat ``classification_report`` dict (keys "acc/group_A"...).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import MappingProxyType
from typing import Mapping, Sequence

from ..metrics.classification import GROUP_NAMES

SYNTHETIC_LABEL = ("SYNTHETIC DATA: these numbers measure the pipeline on generated audio and are not "
                   "comparable with the paper")


@dataclasses.dataclass(frozen=True)
class PaperRow:
    key: str
    system: str
    average: float | None  # percent, as published; None where the spec gives no number
    note: str = ""
    aliases: tuple[str, ...] = ()  # other keys callers use for this row


# Table 1: 3-class (indoor / outdoor / transportation) accuracy, %.
TABLE1 = (
    PaperRow("resnet", "ResNet (3-class)", 91.4),
    PaperRow("fcnn", "FCNN (3-class)", 92.9),
    PaperRow("ensemble", "Ensemble ResNet + FCNN (3-class)", 93.2),
)

_ROW_ORDER_NOTE = ("published figure obtained by fusing score files row by row (a label leak); "
                   "`tf-scenes audit-fusion` reproduces 81.89 % that way and 79.36 % joined by filename")
_VARIANT_NOTE = ("the spec lists 77.7 / 80.1 / 79.0 without naming the variants; matched to the 10-class "
                 "ResNet / FCNN / fsFCNN (each fused with the 3-class ensemble) by their order: an assumption")

# Table 2: 10-class accuracy on the fold-1 evaluation set (average over devices), %.
TABLE2 = (
    PaperRow("resnet", "ResNet", 74.6),
    PaperRow("fcnn", "FCNN", 76.9),
    PaperRow("fsfcnn", "fsFCNN", 76.2),
    PaperRow("ensemble", "Ensemble ResNet + FCNN + fsFCNN", 79.4),
    PaperRow("two_stage_1", "2-stage, variant 1 (ResNet?)", 77.7, _VARIANT_NOTE, ("2stage_resnet",)),
    PaperRow("two_stage_2", "2-stage, variant 2 (FCNN?)", 80.1, _VARIANT_NOTE, ("2stage_fcnn",)),
    PaperRow("two_stage_3", "2-stage, variant 3 (fsFCNN?)", 79.0, _VARIANT_NOTE, ("2stage_fsfcnn",)),
    PaperRow("two_stage_ensemble", "2-stage, ensemble (3-class) x ensemble (10-class)", 81.9, _ROW_ORDER_NOTE,
             ("2stage_ensemble",)),
)

# Table 3: augmentation ablation on the 10-class ResNet (names only; the spec gives no numbers).
TABLE3 = (
    PaperRow("base", "ResNet, base", None),
    PaperRow("specaugment", "+ SpecAugment", None),
    PaperRow("spectrum_correction", "+ spectrum correction", None),
    PaperRow("reverb_drc", "+ reverberation / DRC", None),
    PaperRow("pitch_speed_noise_mix", "+ pitch / speed / noise / mix", None),
)

PAPER_TABLES = MappingProxyType({"table1": TABLE1, "table2": TABLE2, "table3": TABLE3})
TITLES = MappingProxyType({
    "table1": "Table 1: 3-class accuracy (indoor / outdoor / transportation)",
    "table2": "Table 2: 10-class accuracy per device group",
    "table3": "Table 3: data augmentation ablation (10-class ResNet)",
})

# What the reference code prints for its final two-stage system (its task1a/README.md, output of
# eval_hybrid.py on the published models): the row-by-row fusion of the two ensembles.  Not a
# paper table; used to check that our row-order fusion reproduces the reference exactly.
REFERENCE_CODE_ROW_ORDER_FUSION = MappingProxyType({
    "acc": 0.819,
    "logloss": 0.936,
    "devices": MappingProxyType({"a": 0.879, "b": 0.809, "c": 0.873, "s1": 0.818, "s2": 0.77, "s3": 0.824,
                                 "s4": 0.83, "s5": 0.791, "s6": 0.776}),
    "groups": MappingProxyType({"A": 0.879, "B&C": 0.841, "s1-s3": 0.804, "s4-s6": 0.799}),
})


def paper_row(table: Sequence[PaperRow] | str, key: str) -> PaperRow | None:
    """The paper row with this key or alias; "row<i>" picks the i-th row; None if absent."""
    rows = PAPER_TABLES[table] if isinstance(table, str) else table
    for r in rows:
        if key == r.key or key in r.aliases:
            return r
    if key.startswith("row") and key[3:].isdigit() and int(key[3:]) < len(rows):
        return rows[int(key[3:])]
    return None


def paper_number(table: Sequence[PaperRow] | str, key: str) -> float | None:
    """Published average accuracy in percent for a row key (see ``paper_row``), or None."""
    r = paper_row(table, key)
    return None if r is None else r.average


def groups_of(metrics: Mapping | None) -> dict[str, float] | None:
    """Device-group accuracies from a group dict or a flat classification_report dict."""
    if metrics is None:
        return None
    if any(k.startswith("acc/group_") for k in metrics):
        return {k.split("/group_", 1)[1]: float(v) for k, v in metrics.items() if k.startswith("acc/group_")}
    if "groups" in metrics:  # audit summaries: {"acc":..., "groups": {...}}
        return {k: float(v) for k, v in metrics["groups"].items()}
    out = {k: float(v) for k, v in metrics.items() if k in GROUP_NAMES}
    if "average" not in out and "acc" in metrics:
        out["average"] = float(metrics["acc"])
    return out


def paper_rows(table: Sequence[PaperRow] | str, ours: Mapping[str, Mapping] | None = None) -> list[dict]:
    """Rows of a paper table with our results (keyed by row key or alias) filled in.

    Entries of `ours` whose key is not in the paper table are appended as extra rows (e.g. the
    filename-joined fusion).  Each value of `ours` may carry "system" and "note" overrides.
    """
    if isinstance(table, str):
        table = PAPER_TABLES[table]
    ours = dict(ours or {})
    rows = []
    for r in table:
        entry = next((ours.pop(k) for k in (r.key, *r.aliases) if k in ours), None)
        rows.append({
            "key": r.key,
            "system": r.system,
            "ours": groups_of(_metrics_only(entry)),
            "paper": {"average": r.average / 100.0} if r.average is not None else None,
            "note": (entry or {}).get("note", r.note) if isinstance(entry, Mapping) else r.note,
        })
    for key, entry in ours.items():
        rows.append({"key": key, "system": (entry or {}).get("system", key), "ours": groups_of(_metrics_only(entry)),
                     "paper": None, "note": (entry or {}).get("note", "")})
    return rows


def _metrics_only(entry):
    if entry is None:
        return None
    return {k: v for k, v in entry.items() if k not in ("system", "note")}


def audit_rows(audit: Mapping) -> list[dict]:
    """Table 2 comparison rows from an ``audit_fusion`` result (published score files)."""
    s = audit["systems"]
    return [
        {"key": "ensemble", "system": "Ensemble (published scores)", "ours": groups_of(s["ensemble_10class"]),
         "paper": {"average": 0.794}, "note": ""},
        {"key": "two_stage_ensemble_row_order", "system": "2-stage ensemble, fused row by row (reference code)",
         "ours": groups_of(s["fused_row_order"]), "paper": {"average": 0.819}, "note": "label leak"},
        {"key": "two_stage_ensemble_by_filename", "system": "2-stage ensemble, joined by filename",
         "ours": groups_of(s["fused_by_filename"]), "paper": None, "note": "correct fusion"},
    ]


def _columns(rows: Sequence[Mapping], groups: Sequence[str]) -> list[tuple[str, str, str]]:
    """(header, side, group) per numeric column; a "paper" column only where a paper value exists."""
    cols = []
    for g in groups:
        cols.append((f"{g} ours", "ours", g))
        if any((r.get("paper") or {}).get(g) is not None for r in rows):
            cols.append((f"{g} paper", "paper", g))
    return cols


def _header_line(data_source: str, profile: str, synthetic: bool) -> str:
    line = f"Data: {data_source}; profile: {profile}"
    return f"{line}. **{SYNTHETIC_LABEL}.**" if synthetic else line + "."


def table_json(title: str, rows: Sequence[Mapping], *, data_source: str, profile: str, synthetic: bool,
               groups: Sequence[str] = GROUP_NAMES) -> dict:
    """JSON-ready table: header fields, column list and rows (fractions)."""
    return {
        "title": title,
        "data_source": data_source,
        "profile": profile,
        "synthetic": bool(synthetic),
        "label": SYNTHETIC_LABEL if synthetic else "",
        "header": _header_line(data_source, profile, synthetic),
        "columns": [c[0] for c in _columns(rows, groups)],
        "rows": [dict(r) for r in rows],
    }


def _fmt(v) -> str:
    return "–" if v is None else f"{100.0 * float(v):.1f}"


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def table_markdown(title: str, rows: Sequence[Mapping], *, data_source: str, profile: str, synthetic: bool,
                   groups: Sequence[str] = GROUP_NAMES) -> str:
    """Markdown table: one column per device group ("ours"), with "paper" beside it where known."""
    cols = _columns(rows, groups)
    header = ["System"] + [c[0] for c in cols] + ["Note"]
    lines = [f"### {title}", "", _header_line(data_source, profile, synthetic), "",
             "| " + " | ".join(_md_cell(h) for h in header) + " |",
             "| " + " | ".join([":---"] + ["---:"] * len(cols) + [":---"]) + " |"]
    for r in rows:
        cells = [_md_cell(r.get("system", r.get("key", "")))]
        for _, side, g in cols:
            cells.append(_fmt((r.get(side) or {}).get(g)))
        cells.append(_md_cell(r.get("note", "")))
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Accuracy in %; device groups are unweighted means of per-device accuracies "
                 "(A; B&C; s1-s3; s4-s6 unseen in training; average over all devices). '–': not available.")
    return "\n".join(lines) + "\n"


def render_markdown(doc: Mapping) -> str:
    """Markdown of a table document with flat percent rows.

    ``doc``: {"title", "data" (or "data_source"), "profile", "synthetic", optional "selection",
    "rows": [{"system", "A": 87.0, ..., "average": 79.4, "paper": 79.4 or None, "note"?}]}
    (accuracies in percent).  Rows already in the ``ours``/``paper`` dict form are used as they are.
    """
    rows = []
    for r in doc["rows"]:
        if "ours" in r:
            rows.append(r)
            continue
        ours = {g: r[g] / 100.0 for g in GROUP_NAMES if r.get(g) is not None}
        paper = r.get("paper")
        rows.append({"key": r.get("key", ""), "system": r.get("system", r.get("key", "")), "ours": ours or None,
                     "paper": {"average": paper / 100.0} if paper is not None else None, "note": r.get("note", "")})
    source = doc.get("data_source", doc.get("data", "unknown"))
    md = table_markdown(doc.get("title", ""), rows, data_source=str(source), profile=str(doc.get("profile", "-")),
                        synthetic=bool(doc.get("synthetic", False)))
    if doc.get("selection"):
        md += f"\nModel selection: {doc['selection']}.\n"
    return md


def write_table(out_stem, title: str, rows: Sequence[Mapping], *, data_source: str, profile: str,
                synthetic: bool, groups: Sequence[str] = GROUP_NAMES) -> tuple[Path, Path]:
    """Write ``<stem>.json`` and ``<stem>.md`` atomically; returns both paths."""
    from ..io_utils import atomic_write_json, atomic_write_text

    stem = Path(out_stem)
    kw = dict(data_source=data_source, profile=profile, synthetic=synthetic, groups=groups)
    js = atomic_write_json(stem.with_suffix(".json"), table_json(title, rows, **kw))
    md = atomic_write_text(stem.with_suffix(".md"), table_markdown(title, rows, **kw))
    return js, md
