"""`tf-scenes finetune RUN_DIR --task asc|tag|sed`: fine-tune a trained DcaseNet run on one task.

The fine-tuning run has the run's own config (hyper-parameters, data, model), one task, and starts
from the run's selected weights; ``--set`` overrides any value of that config. It is trained,
evaluated and reused like a run of the study (tf_scenes.experiments.study).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from . import plan as dplan


def add_arguments(parser) -> None:
    parser.add_argument("run_dir", type=Path, help="a trained DcaseNet run folder (model.json, config.yaml)")
    parser.add_argument("--task", required=True, choices=dplan.TASKS, help="the task to fine-tune on")
    parser.add_argument("--out", type=Path, help="run folder of the fine-tuned model (default RUN_DIR-ft-TASK)")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="cache root (default: $TF_SCENES_CACHE, else ~/.cache/tf-scenes)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a value of the run's config, e.g. --set train.epochs=3 (repeatable)")


def finetune_config(run_dir: Path, task: str, overrides=()) -> dplan.RunConfig:
    """The fine-tuning run of ``task`` from ``run_dir``: the run's own config, one task, initialised
    from its selected weights, with ``overrides`` applied."""
    import yaml

    from tf_scenes.config import apply_overrides, from_dict, to_dict
    from tf_scenes.errors import ConfigError

    run_dir = Path(run_dir)
    dplan.init_weights(str(run_dir))  # one clear error if not a finished DcaseNet run
    try:
        raw = yaml.safe_load((run_dir / "config.yaml").read_text())
    except OSError as e:
        raise ConfigError(f"{run_dir}: no readable config.yaml ({e})") from e
    base = from_dict(dplan.RunConfig, raw, prefix=str(run_dir / "config.yaml"))
    spec = dataclasses.replace(base, name=f"{base.name}-ft-{task}", tasks=(task,), init_from=str(run_dir.resolve()))
    spec = from_dict(dplan.RunConfig, apply_overrides(to_dict(spec), list(overrides)))
    return dataclasses.replace(spec, tasks=dplan.parse_tasks(spec.tasks))


def run(args) -> int:
    from tf_scenes.io_utils import dumps_json, ensure_writable_dir

    from ..study import StudyEnv, cache_root, output_lock, train_or_reuse
    from . import STUDY

    rc = finetune_config(args.run_dir, args.task, args.overrides)
    out = ensure_writable_dir(Path(args.out) if args.out else args.run_dir.parent / rc.name)
    cache = ensure_writable_dir(cache_root(args.cache_dir))
    with output_lock(out):
        data = dplan.Data({t: dplan.load_task(t, rc.data, rc.seed, cache) for t in rc.tasks}, None)
        env = StudyEnv(out, cache, STUDY, None)
        result = train_or_reuse(STUDY, dplan.run_spec(rc, in_plan=False), data, out, env)
    print(dumps_json({"run_dir": str(out), **{k: v for k, v in result.metrics.items() if "/" not in k}}, indent=2))
    return 0
