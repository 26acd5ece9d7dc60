"""segio batch, the parts that need no worker: discovery (glob, folder tree, manifest),
output patterns, the ledger's rules, the memory window and the option merging."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from segio.batch.items import assign_outputs, from_manifest, from_paths, from_tree, stem
from segio.batch.ledger import Ledger, decide
from segio.batch.runner import MIB, Window
from segio.batch.work import fingerprint
from segio.cli.batch import _row_params, parse_size
from segio.errors import ValidationError

SUFFIXES = [".nii.gz", ".nii", ".seg.nrrd", ".nrrd", ".dcm", ".seg.dcm"]


def touch(path: Path, text: str = "x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_stem_strips_the_longest_format_suffix() -> None:
    assert stem("a/b/liver.seg.nrrd", SUFFIXES) == "liver"
    assert stem("case.01.nii.gz", SUFFIXES) == "case.01"
    assert stem("x/scan.mha", SUFFIXES) == "scan"
    assert stem("x/series_folder/", SUFFIXES) == "series_folder"


def test_a_glob_lists_its_matches_in_order_and_one_matching_nothing_is_refused(
    tmp_path: Path,
) -> None:
    for name in ("b.nii.gz", "a.nii.gz", "c.nrrd"):
        touch(tmp_path / name)
    items = from_paths([str(tmp_path / "*.nii.gz"), str(tmp_path / "c.nrrd")], SUFFIXES)
    assert [item.case for item in items] == ["a", "b", "c"]
    assert items[0].sources == (str(tmp_path / "a.nii.gz"),)
    with pytest.raises(ValidationError, match=r"no file matches .*\*\.nrrd\.gz"):
        from_paths([str(tmp_path / "*.nrrd.gz")])


def test_a_tree_has_one_item_per_case_and_finds_each_reference_by_pattern(
    tmp_path: Path,
) -> None:
    root = tmp_path / "cases"
    touch(root / "p1" / "seg.nii.gz")
    touch(root / "p1" / "CT" / "1.dcm")
    touch(root / "p2" / "seg.nii.gz")  # no CT: this item's problem, not the batch's
    touch(root / "p3" / "seg.nii.gz")
    touch(root / "p3" / "seg2.nii.gz")  # two inputs match: ambiguous
    touch(root / "p4" / "other.txt")  # none matches
    touch(root / ".hidden" / "seg.nii.gz")
    found = from_tree(str(root), "seg*.nii.gz", SUFFIXES)
    items = assign_outputs(
        found,
        str(tmp_path / "out/{case}/{stem}.dcm"),
        str(root / "{case}" / "CT"),
        suffixes=SUFFIXES,
    )
    by_case = {item.case: item for item in items}
    assert sorted(by_case) == ["p1", "p2", "p3", "p4"]
    assert by_case["p1"].problem is None
    assert by_case["p1"].reference == str(root / "p1" / "CT")
    assert by_case["p1"].output == str(tmp_path / "out/p1/seg.dcm")
    assert "does not exist" in str(by_case["p2"].problem)
    assert "2 files" in str(by_case["p3"].problem)
    assert "no file" in str(by_case["p4"].problem)


def test_manifests_in_csv_and_json_lines_give_the_same_items(tmp_path: Path) -> None:
    csv = tmp_path / "list.csv"
    csv.write_text(
        "case,input,output,reference,options\n"
        "one,a.nii.gz,out/one.dcm,CT,\n"
        "two,b.nii.gz;c.nii.gz,,,\"-P 'Smoothing factor=0' --rename liver=LIVER\"\n"
    )
    jsonl = tmp_path / "list.jsonl"
    rows = [
        {"case": "one", "input": "a.nii.gz", "output": "out/one.dcm", "reference": "CT"},
        {
            "case": "two",
            "input": ["b.nii.gz", "c.nii.gz"],
            "options": ["-P", "Smoothing factor=0", "--rename", "liver=LIVER"],
        },
    ]
    jsonl.write_text("\n".join(json.dumps(row) for row in rows) + "\n\n")
    from_csv, from_json = from_manifest(str(csv)), from_manifest(str(jsonl))
    assert [(i.case, i.sources, i.output, i.reference, i.options) for i in from_csv] == [
        (i.case, i.sources, i.output, i.reference, i.options) for i in from_json
    ]
    one, two = from_csv
    assert one.sources == (str(tmp_path / "a.nii.gz"),)  # relative to the manifest
    assert one.output == str(tmp_path / "out/one.dcm")
    assert two.sources == (str(tmp_path / "b.nii.gz"), str(tmp_path / "c.nii.gz"))
    assert two.options == ("-P", "Smoothing factor=0", "--rename", "liver=LIVER")
    assert one.where == "list.csv line 2"


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("bad.csv", "input,colour\na,b\n", "unknown column 'colour'"),
        ("bad.csv", "case,output\nx,y\n", "no 'input' column"),
        (
            "bad.csv",
            'input,options\na,"-P \'unclosed"\n,\nb,c,d\n',
            "bad.csv line 2: options: No closing quotation; bad.csv line 3: no input; "
            "bad.csv line 4: more cells",
        ),
        (
            "bad.jsonl",
            '{"input": "a"}\n{not json\n[1]\n{"input": 3}\n{"inputs": "a"}\n',
            "bad.jsonl line 2: not JSON .*; bad.jsonl line 3: not a JSON object; "
            "bad.jsonl line 4: input is not a path .* \\(and 1 more\\)",
        ),
    ],
)
def test_bad_manifest_rows_are_refused_in_one_line_naming_them(
    tmp_path: Path, name: str, text: str, expected: str
) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ValidationError, match=expected) as caught:
        from_manifest(str(path))
    assert "\n" not in str(caught.value)


def test_output_patterns_refuse_unknown_fields_and_two_items_on_one_file(
    tmp_path: Path,
) -> None:
    items = from_paths([str(touch(tmp_path / "a" / "x.nii.gz")), str(touch(tmp_path / "b/x.nii"))])
    with pytest.raises(ValidationError, match=r"holds \{name\}.*use \{case\}"):
        assign_outputs(items, "out/{name}.dcm", suffixes=SUFFIXES)
    split = assign_outputs(items, "out/{parent}/{name}.nii.gz", suffixes=SUFFIXES, split=True)
    assert [item.output for item in split] == ["out/a/{name}.nii.gz", "out/b/{name}.nii.gz"]
    with pytest.raises(ValidationError, match=r"a/x.nii.gz and .*b/x.nii both write out/x.dcm"):
        assign_outputs(items, "out/{stem}.dcm", suffixes=SUFFIXES)
    beside = assign_outputs(items, "{dir}/{stem}.dcm", suffixes=SUFFIXES)
    assert [item.output for item in beside] == [
        str(tmp_path / "a" / "x.dcm"),
        str(tmp_path / "b" / "x.dcm"),
    ]


def test_a_torn_last_ledger_line_is_ignored_and_the_next_entry_starts_a_new_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.jsonl"
    path.write_text('{"output": "/a", "state": "ok"}\n{"output": "/b", "sta')
    ledger = Ledger(path)
    assert ledger.load() == {"/a": {"output": "/a", "state": "ok"}}
    ledger.open()
    with pytest.raises(ValidationError, match="another segio batch is running"):
        Ledger(path).open()
    ledger.append({"output": "/c", "state": "started"})
    ledger.close()
    assert set(Ledger(path).load()) == {"/a", "/c"}


def test_the_ledger_decides_by_options_sources_reference_and_outputs(tmp_path: Path) -> None:
    source = touch(tmp_path / "a.nii.gz", "voxels")
    output = touch(tmp_path / "a.dcm")
    entry = {
        "output": str(output),
        "state": "ok",
        "options": "d1",
        "sources": [fingerprint(str(source))],
        "reference": None,
        "written": [str(output)],
    }
    sources = [str(source)]
    assert decide(entry, sources, "d1", None, False).action == "skip"
    assert decide(entry, sources, "d2", None, False).reason == "options changed"
    assert decide(entry, sources, "d1", {"path": "/ct"}, False).reason == "reference changed"
    assert decide(None, sources, "d1", None, False).reason == "new"
    assert decide({"output": "x", "state": "started"}, sources, "d1", None, False).owned
    # touched, same bytes: still done (the checksum says so), with the new time to record
    os.utime(source, ns=(1, 1))
    decision = decide(entry, sources, "d1", None, False)
    assert (decision.action, decision.refreshed[0]["mtime_ns"]) == ("skip", 1)  # type: ignore[index]
    source.write_text("VOXELS")  # same size, other bytes
    assert decide(entry, sources, "d1", None, False).reason == "source changed"
    source.write_text("voxels")
    output.unlink()
    assert decide(entry, sources, "d1", None, False).reason == "output missing"
    failed = {**entry, "state": "failed", "error": "corrupt"}
    assert decide(failed, sources, "d1", None, False).action == "failed"
    assert decide(failed, sources, "d1", None, True).reason == "retrying a failure"
    assert decide(failed, sources, "d2", None, False).action == "run"


def test_a_folder_source_is_fingerprinted_over_every_file(tmp_path: Path) -> None:
    touch(tmp_path / "s" / "1.dcm", "one")
    touch(tmp_path / "s" / "sub" / "2.dcm", "two")
    before = fingerprint(str(tmp_path / "s"))
    assert (before["files"], before["size"]) == (2, 6)
    (tmp_path / "s" / "sub" / "2.dcm").rename(tmp_path / "s" / "sub" / "3.dcm")
    assert fingerprint(str(tmp_path / "s"))["sha256"] != before["sha256"]


def test_the_memory_budget_caps_items_in_flight() -> None:
    window = Window(slots=4, budget=None, estimate=300 * MIB)
    assert (window.limit(), window.workers()) == (8, 4)
    window = Window(slots=4, budget=1000 * MIB, estimate=300 * MIB)
    assert window.workers() == 3
    window.measure({"peak_memory_mb": 400})  # measured: 400 MiB + a quarter
    assert window.workers() == 2
    window = Window(slots=4, budget=10 * MIB, estimate=300 * MIB)
    assert window.workers() == 1  # never none


@pytest.mark.parametrize(
    ("text", "size"), [("8G", 8 << 30), ("512MiB", 512 << 20), ("1.5gb", 3 << 29), ("100", 100)]
)
def test_memory_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


def test_memory_size_that_is_not_one_is_refused() -> None:
    with pytest.raises(ValidationError, match="--memory '8 apples' is not a size"):
        parse_size("8 apples")


def test_a_rows_options_override_single_options_and_add_to_repeated_ones(
    tmp_path: Path,
) -> None:
    from segio.batch.items import Item

    base = {"rename": ("a=b",), "resample_mode": "nearest", "parameter": (), "force": False}
    item = Item("x", ("x",), options=("--rename", "c=d", "--resample-mode", "quality", "-f"))
    merged = _row_params(base, item)
    assert merged["rename"] == ("a=b", "c=d")
    assert (merged["resample_mode"], merged["force"], merged["parameter"]) == (
        "quality",
        True,
        (),
    )
    bad = Item("x", ("x",), options=("--jobs", "3"), where="m.csv line 2")
    with pytest.raises(ValidationError, match=r"m.csv line 2: options: No such option .--jobs."):
        _row_params(base, bad)


def test_batch_help_and_the_batch_package_import_neither_dask_nor_heavy_libraries() -> None:
    import subprocess
    import sys

    code = (
        "import contextlib, io, json, sys\nimport segio.batch\nfrom segio.cli import cli\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    cli.main(['batch', '--help'], standalone_mode=False)\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    heavy = ("dask", "distributed", "pydicom", "nibabel", "vtk", "scipy", "rich")
    assert not [m for m in loaded if m.split(".")[0] in heavy]


def test_a_file_added_to_the_reference_series_makes_its_items_stale(tmp_path: Path) -> None:
    from segio.batch.ledger import reference_print

    touch(tmp_path / "CT" / "1.dcm")
    before = reference_print(str(tmp_path / "CT"))
    assert before == reference_print(str(tmp_path / "CT"))
    assert reference_print(str(tmp_path / "nowhere")) is None
    touch(tmp_path / "CT" / "2.dcm")
    after = reference_print(str(tmp_path / "CT"))
    assert after is not None and before is not None and after["entries"] == 2
    written = str(touch(tmp_path / "out.dcm"))
    entry = {
        "state": "ok",
        "options": "d",
        "sources": [],
        "reference": before,
        "written": [written],
    }
    assert decide(entry, [], "d", before, False).action == "skip"
    assert decide(entry, [], "d", after, False).reason == "reference changed"


def test_a_worker_reads_a_reference_series_once_while_it_is_unchanged(tmp_path: Path) -> None:
    from segio.batch import work
    from segio.testing.series import reference_series
    from segio.testing.synthetic import grid

    folder = reference_series(grid("oblique", shape=(3, 5, 4)), tmp_path / "CT")
    first = work._reference(folder)
    assert work._reference(str(folder)) is first  # read once
    assert first.geometry.shape == (3, 5, 4)
    (folder / "note.txt").write_text("a file more: the series may have changed")
    assert work._reference(folder) is not first
    assert work._reference(tmp_path / "nowhere") == tmp_path / "nowhere"  # left to convert


def test_dask_tasks_carry_groups_of_small_items_and_end_together() -> None:
    from segio.batch.runner import GROUP_MAX, TASK_SECONDS, Grouping

    grouping = Grouping()
    assert grouping.size(1000, 2) == 1  # nothing timed yet
    for _ in range(5):
        grouping.measure({"seconds": 0.02})
    grouping.measure({"seconds": None})  # a lost item has no time
    assert grouping.size(1000, 2) == int(TASK_SECONDS / 0.02)
    assert grouping.size(20, 2) == 2  # the end of the batch: four tasks per slot
    assert grouping.size(3, 2) == 1
    instant = Grouping()
    instant.measure({"seconds": 0.0})
    assert instant.size(10**6, 1) == GROUP_MAX
    big = Grouping()
    big.measure({"seconds": 5.0})
    assert big.size(1000, 2) == 1  # slow items go one by one
