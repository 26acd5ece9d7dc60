"""The bundled fixtures are what the generator makes, and the demo runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"


def test_generator_reproduces_the_committed_fixtures(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(FIXTURES / "generate.py"), str(tmp_path)],
        check=True,
        capture_output=True,
    )
    made = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert made, "the generator wrote nothing"
    for relative in made:
        committed = FIXTURES / relative
        assert committed.is_file(), f"{relative} is generated but not committed"
        assert (tmp_path / relative).read_bytes() == committed.read_bytes(), (
            f"{relative} differs from what fixtures/generate.py makes; run `make fixtures`"
        )


def test_demo_runs_and_reports_an_exact_round_trip() -> None:
    result = subprocess.run(
        [sys.executable, str(FIXTURES / "demo.py")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "names, colours, terminology and geometry identical" in result.stdout
