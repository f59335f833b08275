"""`make test` runs each family's tiny study once, on one worker, by grouping its tests with
`--dist loadgroup` (tests/conftest.py). A pytest / pytest-xdist pair that ignores the groups runs
every tiny study on both workers (several minutes more): this checks the installed pair keeps them."""

import os
import subprocess
import sys
import textwrap


def test_loadgroup_keeps_a_group_on_one_worker(tmp_path):
    (tmp_path / "test_grouped.py").write_text(textwrap.dedent("""
        import os
        import pytest

        pytestmark = pytest.mark.xdist_group("one")

        @pytest.mark.parametrize("i", range(6))
        def test_worker(i):
            with open(os.path.join(os.environ["GROUP_OUT"], f"{i}.worker"), "w") as f:
                f.write(os.environ["PYTEST_XDIST_WORKER"])
    """))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2", "--dist",
                           "loadgroup", "--basetemp", str(tmp_path / "base"), "test_grouped.py"],
                          cwd=tmp_path, env={**os.environ, "GROUP_OUT": str(tmp_path)}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    workers = {p.read_text() for p in tmp_path.glob("*.worker")}
    assert len(list(tmp_path.glob("*.worker"))) == 6 and len(workers) == 1, workers
