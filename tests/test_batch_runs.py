"""segio batch end to end, in fresh processes as a user runs it: local workers and Dask
give the same segmentations, a rerun skips what is done and current, failures are
isolated and named, the memory budget caps the workers, and a batch killed halfway
(its whole process group, SIGKILL) is completed by the rerun without redoing anything
or leaving a partial file."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from batch_cases import content, ledger_states, make_cases, report_lines, run_segio

import segio

TREE = ("--input-pattern", "seg.nii.gz", "--reference", "CT")


def test_a_batch_converts_every_case_and_a_rerun_redoes_only_what_is_stale(
    tmp_path: Path,
) -> None:
    cases = make_cases(tmp_path, 3)
    args = ("batch", "--tree", cases, *TREE, "-o", "out/{case}.seg.dcm", "-j", "2", "--report")
    first = run_segio(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "3 converted, 0 skipped (done before), 0 failed, of 3 items" in first.stdout
    lines = report_lines(tmp_path / "out" / "segio-batch-report.jsonl")
    assert {line["status"] for line in lines.values()} == {"ok"}
    assert lines["c01"]["report"][0]["dice"] == 1.0  # --report: per segment, read back
    assert lines["c01"]["peak_memory_mb"] > 0
    for case in ("c00", "c01", "c02"):
        written = segio.read(tmp_path / "out" / f"{case}.seg.dcm")
        assert content(written) == content(segio.read(cases / case / "seg.nii.gz"))
    outputs = sorted((tmp_path / "out").glob("*.seg.dcm"))
    times = {path: path.stat().st_mtime_ns for path in outputs}

    again = run_segio(*args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "0 converted, 3 skipped" in again.stdout
    os.utime(cases / "c00" / "seg.nii.gz")  # touched, same bytes: still current
    segio.write(  # other bytes: stale
        segio.read(cases / "c00" / "seg.nii.gz"), cases / "c01" / "seg.nii.gz", force=True
    )
    third = run_segio(*args, cwd=tmp_path)
    lines = report_lines(tmp_path / "out" / "segio-batch-report.jsonl")
    assert {case: line["status"] for case, line in lines.items()} == {
        "c00": "skipped",
        "c01": "ok",
        "c02": "skipped",
    }, third.stderr
    assert lines["c01"]["reason"] == "source changed"
    assert {p: p.stat().st_mtime_ns for p in outputs if "c01" not in p.name} == {
        p: t for p, t in times.items() if "c01" not in p.name
    }
    # Another option: every item is stale, and its own earlier output is replaced
    renamed = run_segio(*args, "--rename", "liver=LIVER", cwd=tmp_path)
    assert "3 converted, 0 skipped" in renamed.stdout, renamed.stderr
    names = [s.name for s in segio.read(tmp_path / "out" / "c02.seg.dcm").segments.values()]
    assert "LIVER" in names


def test_a_corrupt_input_a_missing_reference_and_an_unwritable_output_fail_alone(
    tmp_path: Path,
) -> None:
    make_cases(tmp_path, 3)
    (tmp_path / "corrupt.nii.gz").write_bytes(b"\x1f\x8b not really gzip")
    (tmp_path / "blocker").write_text("a file where a folder must be")
    rows = [
        {"case": "good0", "input": "cases/c00/seg.nii.gz", "reference": "CT"},
        {"case": "corrupt", "input": "corrupt.nii.gz", "reference": "CT"},
        {"case": "good1", "input": "cases/c01/seg.nii.gz", "reference": "CT"},
        {"case": "no_reference", "input": "cases/c02/seg.nii.gz", "reference": "CT2"},
        {"case": "unwritable", "input": "cases/c02/seg.nii.gz", "reference": "CT",
         "output": "blocker/c02.dcm"},
        {"case": "good2", "input": "cases/c02/seg.nii.gz"},  # --reference of the batch
    ]  # fmt: skip
    manifest = tmp_path / "cases.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    report = tmp_path / "report.jsonl"  # the outputs' common folder is tmp_path
    args = ("batch", "--manifest", manifest, "-o", "out/{case}.dcm", "-r", "CT", "-j", "2")
    args = (*args, "--results", report)
    result = run_segio(*args, cwd=tmp_path)
    assert result.returncode == 1
    lines = report_lines(report)
    failed = {case for case, line in lines.items() if line["status"] == "failed"}
    assert failed == {"corrupt", "no_reference", "unwritable"}
    assert "6 converted" not in result.stdout
    assert "3 converted, 0 skipped (done before), 3 failed, of 6 items" in result.stdout
    for case in failed:
        assert f"failed: {case}: " in result.stdout
        assert "\n" not in lines[case]["error"] and "Traceback" not in result.stderr
    assert "CT2 does not exist" in lines["no_reference"]["error"]
    assert "cannot make the output folder" in lines["unwritable"]["error"]
    for case in ("good0", "good1", "good2"):
        assert segio.read(tmp_path / "out" / f"{case}.dcm").segments
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.suffix == ".dcm") == [
        "good0.dcm",
        "good1.dcm",
        "good2.dcm",
    ]
    # A rerun does not retry a failure of an unchanged item; --retry-failed does
    again = run_segio(*args, cwd=tmp_path)
    lines = report_lines(report)
    assert again.returncode == 1
    assert lines["corrupt"]["reason"] == "failed before"
    assert "--retry-failed" in lines["corrupt"]["error"]
    assert lines["good1"]["status"] == "skipped"
    retried = run_segio(*args, "--retry-failed", cwd=tmp_path)
    lines = report_lines(report)
    assert retried.returncode == 1
    assert lines["corrupt"]["reason"] == lines["unwritable"]["reason"] == "retrying a failure"


def test_the_memory_budget_runs_one_item_at_a_time(tmp_path: Path) -> None:
    cases = make_cases(tmp_path, 4, copies=True)
    args = ("batch", "--tree", cases, *TREE, "-o", "out/{case}.dcm", "-j", "2", "--memory", "1M")
    result = run_segio(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = sorted(
        report_lines(tmp_path / "out" / "segio-batch-report.jsonl").values(),
        key=lambda line: line["started"],
    )
    assert len(lines) == 4
    for before, after in itertools.pairwise(lines):
        assert before["finished"] <= after["started"]


def test_a_dask_cluster_converts_a_batch_to_what_local_workers_do(tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    cases = make_cases(tmp_path, 4)
    local = run_segio(
        "batch", "--tree", cases, *TREE, "-o", "local/{case}.dcm", "-j", "2", cwd=tmp_path
    )
    assert local.returncode == 0, local.stderr
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://127.0.0.1:")
        remote = run_segio(
            "batch", "--tree", cases, *TREE, "-o", "dask/{case}.dcm", "--scheduler", address,
            cwd=tmp_path,
        )  # fmt: skip
    assert remote.returncode == 0, remote.stderr
    own = run_segio(
        "batch", "--tree", cases, *TREE, "-o", "own/{case}.dcm", "--dask", "-j", "2", cwd=tmp_path
    )
    assert own.returncode == 0, own.stderr
    workers = {
        line["worker"]
        for line in report_lines(tmp_path / "dask" / "segio-batch-report.jsonl").values()
    }
    assert len(workers) >= 1 and all(":" in worker for worker in workers)
    for case in ("c00", "c01", "c02", "c03"):
        expected = content(segio.read(tmp_path / "local" / f"{case}.dcm"))
        assert content(segio.read(tmp_path / "dask" / f"{case}.dcm")) == expected
        assert content(segio.read(tmp_path / "own" / f"{case}.dcm")) == expected
        assert expected == content(segio.read(cases / case / "seg.nii.gz"))


def test_a_batch_killed_halfway_is_completed_by_the_rerun_without_repeats(
    tmp_path: Path,
) -> None:
    count = 40
    cases = make_cases(tmp_path, count, shape=(32, 96, 96), copies=True)
    args = ["batch", "--tree", str(cases), *TREE, "-o", "out/{case}.dcm", "-j", "2"]
    ledger = tmp_path / "out" / ".segio-batch.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-c", "from segio.cli import main; main()", *args],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            done = sum(state == "ok" for state in ledger_states(ledger).values())
            if done >= 3 or process.poll() is not None:
                break
            time.sleep(0.005)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL, "the batch ended before it was killed"
    states = ledger_states(ledger)
    finished = {Path(output).stem for output, state in states.items() if state == "ok"}
    assert 3 <= len(finished) < count
    times = {case: (tmp_path / "out" / f"{case}.dcm").stat().st_mtime_ns for case in finished}

    rerun = subprocess.run(
        [sys.executable, "-c", "from segio.cli import main; main()", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert rerun.returncode == 0, rerun.stderr
    lines = report_lines(tmp_path / "out" / "segio-batch-report.jsonl")
    assert {case for case, line in lines.items() if line["status"] == "skipped"} == finished
    assert {line["status"] for case, line in lines.items() if case not in finished} == {"ok"}
    assert {
        case: (tmp_path / "out" / f"{case}.dcm").stat().st_mtime_ns for case in finished
    } == times
    names = sorted(path.name for path in (tmp_path / "out").iterdir())
    assert names == sorted(
        [f"c{i:02d}.dcm" for i in range(count)] + [".segio-batch.jsonl", "segio-batch-report.jsonl"]
    )  # no temporary, no journal, no partial file
    expected = content(segio.read(cases / "c00" / "seg.nii.gz"))
    for index in range(count):
        assert content(segio.read(tmp_path / "out" / f"c{index:02d}.dcm")) == expected


def test_split_outputs_are_one_file_per_segment_and_a_missing_one_redoes_its_item(
    tmp_path: Path,
) -> None:
    cases = make_cases(tmp_path, 2)
    args = ("batch", "--tree", cases, "--input-pattern", "seg.nii.gz", "--split", "-j", "1")
    args = (*args, "-o", "out/{case}/{name}.nii.gz")
    assert run_segio(*args, cwd=tmp_path).returncode == 0
    pieces = sorted(p.name for p in (tmp_path / "out" / "c01").glob("*.nii.gz"))
    names = [s.name for s in segio.read(cases / "c01" / "seg.nii.gz").segments.values()]
    assert pieces == sorted(f"{name}.nii.gz" for name in names)
    (tmp_path / "out" / "c01" / pieces[0]).unlink()
    again = run_segio(*args, cwd=tmp_path)
    lines = report_lines(tmp_path / "out" / "segio-batch-report.jsonl")
    assert (lines["c00"]["status"], lines["c01"]["reason"]) == ("skipped", "output missing")
    assert (tmp_path / "out" / "c01" / pieces[0]).exists(), again.stderr


def test_a_worker_that_dies_fails_its_items_and_a_new_pool_runs_the_rest(
    tmp_path: Path,
) -> None:
    from batch_cases import DiesWhenUnpickled

    from segio.batch.items import Item
    from segio.batch.runner import execute
    from segio.batch.work import Task
    from segio.operations import Edits

    cases = make_cases(tmp_path, 1)
    source = str(cases / "c00" / "seg.nii.gz")

    def task(name: str, edits: object) -> Task:
        return Task(Item(name, (source,), output=str(tmp_path / f"{name}.nrrd")), edits)

    tasks = [task("dies", DiesWhenUnpickled()), *(task(f"ok{i}", Edits()) for i in range(4))]
    results = {t.item.case: r for t, r in execute(tasks, jobs=1)}
    assert results["dies"]["status"] == "failed"
    assert "its worker process died" in results["dies"]["error"]
    assert [results[f"ok{i}"]["status"] for i in (2, 3)] == ["ok", "ok"]  # after the break
    assert segio.read(tmp_path / "ok3.nrrd").segments


def test_a_progress_bar_on_a_terminal_and_none_in_a_pipe(tmp_path: Path) -> None:
    import pty
    import select

    cases = make_cases(tmp_path, 4, copies=True)
    args = ["batch", "--tree", str(cases), *TREE, "-j", "2"]
    command = [sys.executable, "-c", "from segio.cli import main; main()", *args]
    env = {**os.environ, "SEGIO_PROGRESS_DELAY": "0", "COLUMNS": "120", "TERM": "xterm"}
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [*command, "-o", "tty/{case}.dcm"], cwd=tmp_path, stdout=subprocess.DEVNULL,
        stderr=slave, env=env,
    )  # fmt: skip
    os.close(slave)
    seen = b""
    while process.poll() is None or select.select([master], [], [], 0.1)[0]:
        if select.select([master], [], [], 0.1)[0]:
            try:
                chunk = os.read(master, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    os.close(master)
    assert process.wait(timeout=60) == 0
    assert "batch of 4 items" in seen.decode(errors="replace")
    assert "/4" in seen.decode(errors="replace")  # items done of 4 (rate and ETA once known)
    piped = subprocess.run(
        [*command, "-o", "pipe/{case}.dcm"], cwd=tmp_path, capture_output=True, text=True,
        env=env, check=False,
    )  # fmt: skip
    assert piped.returncode == 0
    assert "batch of" not in piped.stderr and "4 converted" in piped.stdout


def test_a_dicom_output_without_any_reference_is_refused_before_any_item_runs(
    tmp_path: Path,
) -> None:
    cases = make_cases(tmp_path, 2)
    args = ("batch", "--tree", cases, "--input-pattern", "seg.nii.gz", "-o", "out/{case}.dcm")
    result = run_segio(*args, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1
    assert "needs the image series" in result.stderr and "--reference-pattern" in result.stderr
    assert not (tmp_path / "out").exists()  # no ledger, no report, no folder
