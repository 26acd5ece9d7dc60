"""What a batch converts: the items found by a glob, in a folder tree or in a manifest,
and the output path of each, made from a pattern.

An :class:`Item` is plain data (strings and tuples) so that it crosses to a worker
process or a Dask worker as it is. Discovery never reads a segmentation: it only lists
files, so a batch of 100,000 cases is planned in seconds. What is wrong with the batch as
a whole (a manifest row that cannot be parsed, two items writing one file, an unknown
placeholder) is refused here, before any work; what is wrong with one item that might be
fixed by the next run (no input in a case folder, its reference series missing) becomes
the item's :attr:`Item.problem`, reported as that item's failure.
"""

from __future__ import annotations

import csv
import glob
import json
import os
import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from segio.errors import ValidationError

__all__ = [
    "PLACEHOLDERS",
    "Item",
    "assign_outputs",
    "from_manifest",
    "from_paths",
    "from_tree",
    "stem",
]

#: What an output or reference pattern may hold, filled per item: ``{case}`` (the case
#: folder's name, or the input's stem), ``{stem}`` (the input's name without its format
#: suffix), ``{parent}`` (the name of the input's folder) and ``{dir}`` (the input's
#: folder). ``--split`` fields (``{name}``...) are left for the conversion to fill.
PLACEHOLDERS = ("case", "stem", "parent", "dir")
SPLIT_FIELDS = ("name", "id", "label", "layer", "index")
_FIELD = re.compile(r"\{([^{}]*)\}")
#: Columns (CSV) or keys (JSON lines) a manifest row may have.
MANIFEST_COLUMNS = ("case", "input", "output", "reference", "options")
#: Bad manifest rows named in the error before the rest are only counted.
ROWS_NAMED = 3


@dataclass(frozen=True)
class Item:
    """One conversion of a batch: the sources merged into one output.

    ``output`` may still hold ``--split`` fields; ``reference`` overrides the batch's
    ``--reference``; ``options`` are ``segio convert`` options of this item alone (a
    manifest row's), added after the batch's; ``where`` says where the item came from,
    for messages (``cases.csv line 4``).
    """

    case: str
    sources: tuple[str, ...]
    output: str = ""
    reference: str | None = None
    options: tuple[str, ...] = ()
    problem: str | None = None
    where: str = ""


def absolute(path: str | os.PathLike[str]) -> str:
    """``path`` made absolute and normalised, links not resolved (the ledger's keys and
    paths: the names the user gave, as seen from any folder)."""
    return os.path.abspath(path)  # noqa: PTH100


def stem(path: str, suffixes: Iterable[str] = ()) -> str:
    """The file name without its format suffix: the longest of ``suffixes`` it ends
    with (``.nii.gz``, ``.seg.nrrd``), else its last suffix."""
    name = Path(path.rstrip("/\\")).name
    matching = [s for s in suffixes if name.lower().endswith(s.lower()) and len(s) < len(name)]
    if matching:
        return name[: -len(max(matching, key=len))]
    return Path(name).stem if Path(name).suffix else name


def _has_magic(text: str) -> bool:
    return glob.has_magic(text)


def from_paths(paths: Sequence[str], suffixes: Iterable[str] = ()) -> list[Item]:
    """One item per file (or DICOM folder) named, a glob pattern standing for every path
    it matches (sorted). A pattern matching nothing is refused: a typo would otherwise
    convert an empty dataset and succeed."""
    found: list[str] = []
    for text in paths:
        if _has_magic(text):
            matches = sorted(glob.glob(text, recursive=True))  # noqa: PTH207 (a user's pattern)
            if not matches:
                raise ValidationError(
                    f"no file matches {text!r}", hint="check the pattern (quote it for segio)"
                )
            found += matches
        else:
            found.append(text)
    return [Item(case=stem(path, suffixes), sources=(path,), where=path) for path in found]


def from_tree(root: str, input_pattern: str, suffixes: Iterable[str] = ()) -> list[Item]:
    """One item per sub-folder of ``root`` (a case), its input the one file or folder
    ``input_pattern`` (a glob, relative to the case folder) matches. A case with no match
    or several is an item with a problem, not a refused batch: the others still run."""
    folder = Path(root)
    if not folder.is_dir():
        raise ValidationError(f"{root} is not a folder", hint="--tree takes the folder of cases")
    cases = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not cases:
        raise ValidationError(f"{root} holds no case folder", hint="one sub-folder per case")
    items = []
    for case in cases:
        pattern = str(Path(glob.escape(str(case))) / input_pattern)
        matches = sorted(glob.glob(pattern))  # noqa: PTH207 (a user's pattern)
        problem = None
        if len(matches) != 1:
            count = "no file" if not matches else f"{len(matches)} files"
            problem = f"{count} in {case} match{'es' if not matches else ''} {input_pattern!r}"
            problem += "; give a --input-pattern that matches exactly one"
        items.append(
            Item(case=case.name, sources=tuple(matches[:1]), problem=problem, where=str(case))
        )
    return items


def from_manifest(path: str) -> list[Item]:
    """The rows of a CSV (with a header) or JSON-lines manifest (``.jsonl``/``.ndjson``):
    ``input`` (several, ``;``-separated in CSV or a list in JSON), and optionally
    ``case``, ``output``, ``reference`` and ``options`` (``segio convert`` options, as
    on a command line or a JSON list). Relative paths are relative to the manifest's
    folder. Every bad row is found before the batch starts; the error names the first."""
    manifest = Path(path)
    try:
        text = manifest.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(f"cannot read the manifest: {exc}", path=path) from None
    if manifest.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        rows = list(_json_rows(text, manifest.name))
    else:
        rows = list(_csv_rows(text, manifest.name))
    base = manifest.parent
    items: list[Item] = []
    errors: list[str] = []
    for where, row in rows:
        if isinstance(row, str):
            errors.append(f"{where}: {row}")
            continue
        try:
            items.append(_manifest_item(row, where, base))
        except ValueError as exc:
            errors.append(f"{where}: {exc}")
    if errors:
        more = f" (and {len(errors) - ROWS_NAMED} more)" if len(errors) > ROWS_NAMED else ""
        raise ValidationError(
            "bad manifest rows: " + "; ".join(errors[:ROWS_NAMED]) + more,
            path=path,
            hint=f"columns: {', '.join(MANIFEST_COLUMNS)} (input required)",
        )
    if not items:
        raise ValidationError("the manifest has no rows", path=path)
    return items


def _csv_rows(text: str, name: str) -> Iterable[tuple[str, dict[str, Any] | str]]:
    reader = csv.DictReader(text.splitlines())
    columns = [c.strip().lower() for c in reader.fieldnames or []]
    unknown = [c for c in columns if c not in MANIFEST_COLUMNS]
    if unknown or "input" not in columns:
        what = f"unknown column {unknown[0]!r}" if unknown else "no 'input' column"
        raise ValidationError(
            f"{name}: {what}", hint=f"the header names some of: {', '.join(MANIFEST_COLUMNS)}"
        )
    for row in reader:
        where = f"{name} line {reader.line_num}"
        if None in row:
            yield where, "more cells than the header has columns"
            continue
        cells = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k is not None}
        inputs = [p.strip() for p in cells.get("input", "").split(";") if p.strip()]
        found = {k: v for k, v in cells.items() if v and k != "input"}
        yield where, {**found, "input": inputs}


def _json_rows(text: str, name: str) -> Iterable[tuple[str, dict[str, Any] | str]]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{name} line {number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            yield where, f"not JSON ({exc.msg})"
            continue
        if not isinstance(row, dict):
            yield where, "not a JSON object"
            continue
        unknown = sorted(set(row) - set(MANIFEST_COLUMNS))
        if unknown:
            yield where, f"unknown key {unknown[0]!r}"
            continue
        inputs = row.get("input")
        yield where, {**row, "input": [inputs] if isinstance(inputs, str) else inputs}


def _manifest_item(row: dict[str, Any], where: str, base: Path) -> Item:
    inputs = row.get("input")
    if not inputs or not isinstance(inputs, list) or not all(isinstance(p, str) for p in inputs):
        raise ValueError("no input" if not inputs else "input is not a path or a list of paths")
    for key in ("case", "output", "reference"):
        if key in row and not isinstance(row[key], str):
            raise ValueError(f"{key} is not text")
    options = row.get("options") or []
    if isinstance(options, str):
        try:
            options = shlex.split(options)
        except ValueError as exc:
            raise ValueError(f"options: {exc}") from None
    elif not isinstance(options, list) or not all(isinstance(o, str) for o in options):
        raise ValueError("options is neither text nor a list of texts")
    sources = tuple(str(base / p) for p in inputs)
    reference = row.get("reference")
    return Item(
        case=row.get("case") or stem(sources[0]),
        sources=sources,
        output=str(base / row["output"]) if row.get("output") else "",
        reference=str(base / reference) if reference else None,
        options=tuple(options),
        where=where,
    )


def fill(pattern: str, item: Item, suffixes: Iterable[str], split: bool) -> str:
    """``pattern`` with the item's placeholders filled; ``--split`` fields are kept for
    the conversion when ``split``, anything else in braces is refused."""
    first = item.sources[0] if item.sources else ""
    values = {
        "case": item.case,
        "stem": stem(first, suffixes) if first else item.case,
        "parent": Path(first).parent.name,
        "dir": str(Path(first).parent),
    }

    def field(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in values:
            return values[name]
        if split and name in SPLIT_FIELDS:
            return match.group(0)
        known = [*PLACEHOLDERS, *(SPLIT_FIELDS if split else ())]
        raise ValidationError(
            f"the pattern {pattern!r} holds {{{name}}}",
            hint="use " + ", ".join(f"{{{k}}}" for k in known),
        )

    return _FIELD.sub(field, pattern)


def assign_outputs(
    items: Sequence[Item],
    output: str | None,
    reference: str | None = None,
    *,
    suffixes: Iterable[str] = (),
    split: bool = False,
) -> list[Item]:
    """Each item with its output (its own, else ``output`` filled) and its reference (its
    own, else ``reference`` filled; a filled reference that does not exist is the item's
    problem). Two items writing one file are refused, naming both."""
    suffixes = list(suffixes)
    done: list[Item] = []
    for item in items:
        target = item.output or (fill(output, item, suffixes, split) if output else "")
        if not target:
            raise ValidationError(
                f"{item.where or item.case}: no output", hint="pass --output PATTERN"
            )
        found = item.reference
        problem = item.problem
        if found is None and reference is not None:
            found = fill(reference, item, suffixes, False)
            if _has_magic(found):
                matches = sorted(glob.glob(found))  # noqa: PTH207 (a user's pattern)
                found = matches[0] if len(matches) == 1 else found
                if len(matches) > 1:
                    problem = problem or f"{len(matches)} reference series match {found!r}"
        if found is not None and not Path(found).exists():
            problem = problem or f"the reference {found} does not exist"
        done.append(replace(item, output=target, reference=found, problem=problem))
    _refuse_clashes(done)
    return done


def _refuse_clashes(items: Sequence[Item]) -> None:
    seen: dict[str, Item] = {}
    for item in items:
        key = os.path.normcase(absolute(item.output))
        if key in seen:
            other = seen[key]
            raise ValidationError(
                f"{other.where or other.case} and {item.where or item.case} both write "
                f"{item.output}",
                hint="put {case} or {stem} in --output so each item has its own file",
            )
        seen[key] = item
