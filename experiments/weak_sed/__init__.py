"""The weak-SED study (Deshmukh et al., Interspeech 2021): `make reproduce-weak-sed`.

:mod:`.plan` (config, remix data, run plan, training and evaluation of one run), :mod:`.report`
(tables, per-class AP, Figure 2, export), ``configs/`` (profiles: paper, quick, tiny).
"""

from __future__ import annotations

from ..study import Study
from . import plan, report

STUDY = Study(family="weak_sed", Config=plan.Config, prepare=plan.prepare, plan=plan.plan, train=plan.train,
              evaluate=plan.evaluate, report=report.report,
              description="weakly supervised SED: 2APAE and pooling baselines at 20/10/0 dB")
