"""The two-stage ASC study (Hu et al., ICASSP 2021): `make reproduce-two-stage`.

:mod:`.plan` (config, data, run plan, training and evaluation of one run), :mod:`.report`
(tables, figures, export), ``configs/`` (profiles: paper, quick, tiny).
"""

from __future__ import annotations

from ..study import Study
from . import plan, report

STUDY = Study(family="two_stage", Config=plan.Config, prepare=plan.prepare, plan=plan.plan, train=plan.train,
              evaluate=plan.evaluate, report=report.report,
              description="two-stage device-robust ASC: ResNet / FCNN / fsFCNN, ensembles, two-stage fusion",
              commands={"augment": ("tf_scenes.experiments.two_stage.augment",
                                    "write one two-stage augmentation of an audio file (to listen to it)")})
