"""Paper numbers of Deshmukh, Raj & Singh (Interspeech 2021) and the weak-SED result tables
(JSON + Markdown) that put ours beside them.

Only the numbers the spec records are here (weak_sed.md "Metrics and paper numbers"): Table 1 for
2APAE (micro-AP / macro-AP / AUC at 20, 10, 0 dB) and Table 2 (micro-AP for alpha 0, 0.001,
0.1).  The spec gives no numbers for the pooling baselines (GAP, GMP, GWRP, dilated-CNN attention
pooling): their "paper" cells stay empty, never filled in from elsewhere.

A Table 1 row::

    {"key": "2apae", "model": "2APAE", "snr": 20.0, "ours": {"micro_ap": .., "macro_ap": .., "auc": ..},
     "paper": {"micro_ap": 0.7829, ...} | None, "folds": {"4": {...}}, "note": ""}

A Table 2 row::

    {"key": "2apae_alpha0", "alpha": 0.0, "ours": {"20": micro_ap, "10": .., "0": ..},
     "paper": {"20": 0.7772, ...} | None, "note": ""}

Values are fractions (as sklearn returns them); Markdown shows 4 decimals like the paper.
"""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType
from typing import Mapping, Sequence

METRICS = ("micro_ap", "macro_ap", "auc")
METRIC_NAMES = MappingProxyType({"micro_ap": "micro-AP", "macro_ap": "macro-AP", "auc": "AUC"})
PAPER_ALPHA = 0.001  # the alpha of the paper's 2APAE in Table 1

MODEL_NAMES = MappingProxyType({
    "gap": "GAP (VGG-ish CNN, global average pooling)",
    "gmp": "GMP (VGG-ish CNN, global max pooling)",
    "gwrp": "GWRP (VGG-ish CNN, global weighted rank pooling)",
    "dilated_attention": "Dilated CNN + attention pooling",
    "2apae": "2APAE",
})

# Table 1 of the paper, 2APAE only (alpha 0.001): SNR (dB) -> metric -> value.
TABLE1_2APAE = MappingProxyType({
    20.0: MappingProxyType({"micro_ap": 0.7829, "macro_ap": 0.7645, "auc": 0.9390}),
    10.0: MappingProxyType({"micro_ap": 0.7603, "macro_ap": 0.7486, "auc": 0.9343}),
    0.0: MappingProxyType({"micro_ap": 0.6986, "macro_ap": 0.6892, "auc": 0.9177}),
})

# Table 2 of the paper: alpha -> SNR (dB) -> micro-AP.
TABLE2 = MappingProxyType({
    0.0: MappingProxyType({20.0: 0.7772, 10.0: 0.7430, 0.0: 0.6937}),
    0.001: MappingProxyType({20.0: 0.7829, 10.0: 0.7603, 0.0: 0.6986}),
    0.1: MappingProxyType({20.0: 0.7637, 10.0: 0.7428, 0.0: 0.6792}),
})

BASELINE_NOTE = "the spec records no paper numbers for the baselines: left empty"
SYNTHETIC_LABEL = ("SYNTHETIC data: these numbers measure the pipeline on generated audio and are not "
                   "comparable with the paper's")


def snr_key(snr: float) -> str:
    """JSON key of an SNR: "20", "10", "0", "-5", "2.5"."""
    return f"{float(snr):g}"


def paper_table1(model: str, snr: float, alpha: float | None = None) -> dict | None:
    """The paper's Table 1 numbers for a model at an SNR (2APAE with alpha 0.001 only), or None."""
    if model != "2apae" or (alpha is not None and alpha != PAPER_ALPHA):
        return None
    row = TABLE1_2APAE.get(float(snr))
    return dict(row) if row is not None else None


def paper_table2(alpha: float, snr: float) -> float | None:
    """The paper's Table 2 micro-AP for an alpha at an SNR, or None."""
    row = TABLE2.get(float(alpha))
    return None if row is None else row.get(float(snr))


def header_line(data_source: str, profile: str, synthetic: bool) -> str:
    line = f"Data: {data_source}; profile: {profile}"
    return f"{line}. **{SYNTHETIC_LABEL}.**" if synthetic else line + "."


def _fmt(v) -> str:
    return "–" if v is None or v != v else f"{float(v):.4f}"  # v != v: NaN


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def table1_markdown(doc: Mapping) -> str:
    """Markdown of a Table 1 document: one row per (model, SNR), ours beside the paper's."""
    header = ["Model", "SNR (dB)"]
    for m in METRICS:
        header += [f"{METRIC_NAMES[m]} ours", f"{METRIC_NAMES[m]} paper"]
    header.append("Note")
    lines = [f"### {doc['title']}", "", doc["header"], "",
             "| " + " | ".join(header) + " |",
             "| " + " | ".join([":---", "---:"] + ["---:"] * (2 * len(METRICS)) + [":---"]) + " |"]
    for r in doc["rows"]:
        cells = [_cell(r["model"]), f"{r['snr']:g}"]
        for m in METRICS:
            cells += [_fmt((r.get("ours") or {}).get(m)), _fmt((r.get("paper") or {}).get(m))]
        cells.append(_cell(r.get("note", "")))
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", *(f"{t}" for t in doc.get("footnotes", ()))]
    return "\n".join(lines).rstrip() + "\n"


def table2_markdown(doc: Mapping) -> str:
    """Markdown of a Table 2 document: one row per alpha, micro-AP per SNR, ours beside the paper's."""
    snrs = [snr_key(s) for s in doc["snrs"]]
    header = ["alpha"]
    for s in snrs:
        header += [f"{s} dB ours", f"{s} dB paper"]
    header.append("Note")
    lines = [f"### {doc['title']}", "", doc["header"], "",
             "| " + " | ".join(header) + " |",
             "| " + " | ".join([":---"] + ["---:"] * (2 * len(snrs)) + [":---"]) + " |"]
    for r in doc["rows"]:
        cells = [f"{r['alpha']:g}"]
        for s in snrs:
            cells += [_fmt((r.get("ours") or {}).get(s)), _fmt((r.get("paper") or {}).get(s))]
        cells.append(_cell(r.get("note", "")))
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", *(f"{t}" for t in doc.get("footnotes", ()))]
    return "\n".join(lines).rstrip() + "\n"


def table_doc(title: str, rows: Sequence[Mapping], *, data_source: str, profile: str, synthetic: bool,
              snrs: Sequence[float], footnotes: Sequence[str] = (), **extra) -> dict:
    """A JSON-ready table document (header fields + rows)."""
    return {"title": title, "data_source": data_source, "profile": profile, "synthetic": bool(synthetic),
            "label": SYNTHETIC_LABEL if synthetic else "", "header": header_line(data_source, profile, synthetic),
            "snrs": [float(s) for s in snrs], **extra, "rows": [dict(r) for r in rows],
            "footnotes": list(footnotes)}


def write_table(out_stem, doc: Mapping, kind: str) -> tuple[Path, Path]:
    """Write ``<stem>.json`` and ``<stem>.md`` (kind "table1" or "table2") atomically."""
    from ..io_utils import atomic_write_json, atomic_write_text

    render = {"table1": table1_markdown, "table2": table2_markdown}[kind]
    stem = Path(out_stem)
    js = atomic_write_json(stem.with_suffix(".json"), dict(doc))
    md = atomic_write_text(stem.with_suffix(".md"), render(doc))
    return js, md
