"""The README's "Use" section works when pasted in order (issue 15, item 5).

Its shell blocks are run as one script (``bash -e``: the first failing command fails the
test), in a scratch folder beside a link to the repository's ``fixtures/``, as they would
run from a clone, with this interpreter's ``segio`` and ``python`` first on ``PATH``.
The section's Python block runs afterwards in the folder the script ended in.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_BLOCK = re.compile(r"^```(sh|python)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _use_blocks() -> list[tuple[str, str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("\n## Use\n")
    end = text.index("\n## ", start + 1)
    return [(m.group(1), m.group(2)) for m in _BLOCK.finditer(text[start:end])]


def test_the_use_section_has_what_it_promises() -> None:
    blocks = _use_blocks()
    script = "\n".join(code for kind, code in blocks if kind == "sh")
    for command in ("convert", "batch", "info", "stats", "compare", "--split", "--report"):
        assert command in script
    assert " -q " in script and " -v" in script and "--json" in script
    assert [kind for kind, _ in blocks].count("python") == 1


def _adapter_block() -> str:
    """The Python block after the "Use" section: the adapters of the test extras."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("\n## More adapters\n")
    end = text.index("\n## ", start + 1)
    (code,) = (m.group(2) for m in _BLOCK.finditer(text[start:end]) if m.group(1) == "python")
    return code


def test_the_use_section_runs_in_order(tmp_path: Path) -> None:
    blocks = _use_blocks()
    (tmp_path / "fixtures").symlink_to(ROOT / "fixtures", target_is_directory=True)
    script = "\n".join(code for kind, code in blocks if kind == "sh")
    (python,) = (code for kind, code in blocks if kind == "python")
    (tmp_path / "use.py").write_text(python, encoding="utf-8")
    (tmp_path / "adapters.py").write_text(_adapter_block(), encoding="utf-8")
    script += '\npython "$USE_PY"\npython "$ADAPTERS_PY"\n'
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "USE_PY": str(tmp_path / "use.py"),
        "ADAPTERS_PY": str(tmp_path / "adapters.py"),
    }
    done = subprocess.run(
        ["bash", "-e", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "segio: error" not in done.stderr
    folder = tmp_path / "try"
    for made in ("sample.nii.gz", "sample.seg.dcm", "from-mesh.seg.nrrd", "merged.seg.nrrd"):
        assert (folder / made).is_file(), made
    assert sorted(p.name for p in (folder / "organs").iterdir() if p.suffix == ".gz")
    assert (folder / "recoloured.nii.gz").is_file()  # the Python block ran
    assert "segio: closed surfaces: " in done.stderr  # -v timed the steps
