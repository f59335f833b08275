"""Paper numbers of Deshmukh, Raj & Singh (Interspeech 2021) that the weak-SED tables print beside ours.

Table 1 for 2APAE (micro-AP / macro-AP / AUC at 20, 10, 0 dB) and Table 2 (micro-AP for alpha 0,
0.001, 0.1). No numbers are recorded for the pooling baselines (GAP, GMP, GWRP, dilated-CNN
attention pooling): their "paper" cells stay empty, never filled in from elsewhere.

A Table 1 row::

    {"key": "2apae", "model": "2APAE", "snr": 20.0, "ours": {"micro_ap": .., "macro_ap": .., "auc": ..},
     "paper": {"micro_ap": 0.7829, ...} | None, "folds": {"4": {...}}, "note": ""}

A Table 2 row::

    {"key": "2apae_alpha0", "alpha": 0.0, "ours": {"20": micro_ap, "10": .., "0": ..},
     "paper": {"20": 0.7772, ...} | None, "note": ""}

Values are fractions (as sklearn returns them); Markdown shows 4 decimals like the paper.
"""

from __future__ import annotations

from types import MappingProxyType

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

BASELINE_NOTE = "the paper gives no numbers for the baselines on this remix: left empty"


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
