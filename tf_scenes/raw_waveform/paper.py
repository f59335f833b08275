"""Published numbers of Abrol & Sharma 2020 that the raw-waveform tables print beside ours (%).

Table II: coarse + fine with attention; Table VI: CNN + GRU (the paper lists "87.1 / 93.8, 87.7 /
93.5", read in Table II's order: coarse Top-1 / Top-3, fine Top-1 / Top-3). No other cells are
recorded: they stay empty. The paper's data (8 coarse / 70 fine classes from LITIS Rouen, DCASE
2017, DARES-G1 and ESC-50) differ from ours, so the numbers stand beside each other for
orientation only.
"""

from __future__ import annotations

from types import MappingProxyType

_ATTENTION = MappingProxyType({"coarse_top1": 85.7, "coarse_top3": 92.1, "fine_top1": 86.2, "fine_top3": 92.6})
TABLES = MappingProxyType({
    "table2": MappingProxyType({"both_attention": _ATTENTION}),
    "table6": MappingProxyType({"both_gru": MappingProxyType({"coarse_top1": 87.1, "coarse_top3": 93.8,
                                                              "fine_top1": 87.7, "fine_top3": 93.5}),
                                "both_attention": _ATTENTION}),
    "table5": MappingProxyType({}),
    "table7": MappingProxyType({}),
})
NOTES = MappingProxyType({
    "table2": "Paper numbers: coarse + fine with attention only (85.7 / 92.1 coarse, 86.2 / 92.6 fine); the "
              "paper's other cells are not recorded here and are left empty",
    "table6": "Paper numbers: CNN + GRU (87.1 / 93.8, 87.7 / 93.5, read as coarse Top-1 / Top-3, fine Top-1 / "
              "Top-3) and the attention model of Table II; CNN + LSTM is not recorded and is left empty",
    "table7": "No paper numbers are recorded for Table VII: the paper columns are empty",
    "table5": "No paper numbers are recorded for Table V: the paper columns are empty",
})
