"""Test helper: every JSON file a run writes must be strict JSON (no NaN / Infinity literals)."""

from __future__ import annotations

import json
from pathlib import Path


def _reject(constant: str):
    raise ValueError(f"non-standard JSON constant {constant}")


def strict_json_errors(root) -> list[str]:
    """'file: problem' for every *.json / *.jsonl file under `root` that a strict parser rejects."""
    problems = []
    for path in sorted(Path(root).rglob("*.json*")):
        if path.suffix not in (".json", ".jsonl") or not path.is_file():
            continue
        text = path.read_text()
        docs = text.splitlines() if path.suffix == ".jsonl" else [text]
        for i, doc in enumerate(docs, 1):
            try:
                json.loads(doc, parse_constant=_reject)
            except ValueError as e:
                where = f"{path}:{i}" if path.suffix == ".jsonl" else str(path)
                problems.append(f"{where}: {e}")
    return problems


def assert_strict_json_files(root, at_least: int = 1) -> None:
    """Fail naming each file under `root` that is not strict JSON; `root` must hold `at_least` files."""
    n = sum(1 for p in Path(root).rglob("*.json*") if p.suffix in (".json", ".jsonl"))
    assert n >= at_least, f"{root}: {n} JSON files, expected at least {at_least}"
    problems = strict_json_errors(root)
    assert not problems, "\n".join(problems[:20])
