"""The raw-waveform study (Abrol & Sharma, TASLP 2020): `make reproduce-raw-waveform`.

:mod:`.plan` (config, data, run plan, training and evaluation of one run), :mod:`.report`
(tables, transfer classifiers, figures, export), ``configs/`` (profiles: paper, quick, tiny).
"""

from __future__ import annotations

from ..study import Study
from . import plan, report

STUDY = Study(family="raw_waveform", Config=plan.Config, prepare=plan.prepare, plan=plan.plan, train=plan.train,
              evaluate=plan.evaluate, report=report.report, required=plan.required_files,
              description="raw-waveform 1D-CNN with hierarchy-aware embeddings: Tables II, V, VI, VII")
