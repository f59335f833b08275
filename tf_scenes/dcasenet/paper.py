"""Published numbers of Jung et al. 2021 (DcaseNet) that the study's tables print beside ours.

Table 2 (single-task training), as the paper reports them: ASC accuracy %, TAG lwlrap %, SED F1 %
(segment-based, computed by the authors' code) and SED error rate. The paper's Table 3 (joint
training and fine-tuning) numbers are not recorded here, so that table's paper cells stay empty.
"""

from __future__ import annotations

from types import MappingProxyType

TABLE2 = MappingProxyType({
    "v1-nomixup": MappingProxyType({"asc_acc": 67.68, "tag_lwlrap": 68.01, "sed_f1": 74.80, "sed_er": 0.3486}),
    "v1": MappingProxyType({"asc_acc": 68.19, "tag_lwlrap": 69.41, "sed_f1": 79.62, "sed_er": 0.2926}),
    "v2": MappingProxyType({"asc_acc": 69.54, "tag_lwlrap": 69.19, "sed_f1": 79.34, "sed_er": 0.3085}),
    "v3": MappingProxyType({"asc_acc": 68.33, "tag_lwlrap": 70.62, "sed_f1": 78.61, "sed_er": 0.3085}),
})
# Parameter counts: v1 / v2 from the paper's text, v3 from the authors' released code.
PARAMS = MappingProxyType({"v1": "8.7 M (paper)", "v2": "8.9 M (paper)", "v3": "13,882,920 (released code)"})
TABLE3_NOTE = ("The paper's Table 3 numbers are not recorded here, so the \"paper\" entries of this table are "
               "left empty; they are not invented.")
