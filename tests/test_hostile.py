"""Every reader on crafted hostile inputs, in memory- and time-limited worker processes.

The cases (``fixtures/hostile/``) name files outside their folder, inflate into gigabytes,
declare sizes their files cannot hold, place vertices and frames far away, carry huge label
values and deep or cyclic structures. Each must end in the outcome it declares, almost
always a one-line :class:`~segio.errors.SegioError` that names the file, within a few
seconds, under a memory limit, without a traceback, and without ever opening the secret
file planted beside the case folders (proved by an audit hook, since CI runs as root and
file permissions prove nothing).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hostile import Case, all_cases
from hostile.worker import Workers

#: Seconds one case may take in a worker (reads of these small files take well under 1 s).
TIMEOUT = float(os.environ.get("SEGIO_HOSTILE_TIMEOUT", "8"))
SECRET = b"SEGIO-SECRET-7f3a9c1e-do-not-leak\n" * 4


def _secret_path(root: Path) -> Path:
    return root / "outside" / "secret.txt"


_ROOT_HOLDER: dict[str, Path] = {}


def _cases() -> list[Case]:
    # Case contents may depend on the secret's absolute path, so it is fixed per session
    # under pytest's base temporary folder; collected once, before any test runs.
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="segio-hostile-"))
    _ROOT_HOLDER["root"] = root
    secret = _secret_path(root)
    secret.parent.mkdir()
    secret.write_bytes(SECRET)
    return all_cases(secret)


CASES = _cases()


@pytest.fixture(scope="module")
def results() -> Iterator[dict[str, dict[str, Any]]]:
    """Every case read once, two at a time, before the first test asserts on them."""
    root = _ROOT_HOLDER["root"]
    tasks = []
    for number, case in enumerate(CASES):
        folder = root / f"case-{number:04d}"
        folder.mkdir()
        case.build(folder)
        tasks.append((case, folder))
    workers = Workers(min(2, os.cpu_count() or 1), _secret_path(root), TIMEOUT)
    try:
        yield workers.run(tasks)
    finally:
        workers.close()
        import shutil

        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input(case: Case, results: dict[str, dict[str, Any]]) -> None:
    result = results[case.name]
    message = result.get("message", "")
    assert result["outcome"] in ("ok", "error"), f"{result['outcome']}: {message}"
    assert not result["secret_opened"], f"opened the secret: {result['secret_opened']}"
    assert SECRET.decode().strip() not in message
    assert result["outcome"] == case.outcome, f"expected {case.outcome}, got: {message}"
    if case.outcome == "error":
        assert "caused_by" not in result, f"{result['caused_by']} behind: {message}"
        assert "\n" not in message and message.strip(), repr(message)
        assert Path(result["folder"]).name in message, f"names no file: {message}"
        assert ".segio-tmp" not in message
        if case.message:
            assert case.message in message
    else:
        assert not result["secret_in_output"]
        if case.segments is not None:
            assert result["segments"] == case.segments
    assert len(result["warnings"]) <= 20, f"{len(result['warnings'])} warnings"


def test_the_suite_covers_every_reader() -> None:
    """Each family contributes cases, and most cases are refusals (the rest are legal files
    that must read cleanly: folders that skip their links and pipes, huge label values)."""
    families = {c.name.split("/")[0] for c in CASES}
    assert families == {"nrrd", "nifti", "meshes", "dicom", "legacy", "general"}
    assert sum(c.outcome == "error" for c in CASES) > 0.75 * len(CASES)
