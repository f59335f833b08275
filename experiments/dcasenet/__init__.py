"""The DcaseNet study (Jung et al., ICASSP 2021): `make reproduce-dcasenet`.

:mod:`.plan` (config, data, run plan, training and evaluation of one run), :mod:`.data` (per-task
tf.data crops and the joint dataset), :mod:`.report` (tables, figures, export), :mod:`.finetune`
(`tf-scenes finetune`), ``configs/`` (profiles: paper, quick, tiny).
"""

from __future__ import annotations

from ..study import Study
from . import plan, report

STUDY = Study(family="dcasenet", Config=plan.Config, prepare=plan.prepare, plan=plan.plan, train=plan.train,
              evaluate=plan.evaluate, report=report.report, required=plan.required_files,
              description="DcaseNet v1/v2/v3: single-task, joint and fine-tuned ASC, tagging and SED",
              commands={"finetune": ("tf_scenes.experiments.dcasenet.finetune",
                                     "fine-tune a trained DcaseNet run on one task")})
