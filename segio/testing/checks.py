"""The checks of the conformance battery, one function per promise a format makes.

Every format plugin, built-in or outside, promises the same things: what it writes reads
back as the same segmentation (:func:`check_round_trip`), bad input is a
:class:`~segio.errors.SegioError` and never a crash or a hang
(:func:`check_rejects_garbage`), its files are recognised without their suffix
(:func:`check_sniffing`), and other formats' files are never taken for its own
(:func:`check_refuses_other_formats`). :class:`segio.testing.conformance.FormatConformance`
runs them all on one format from its declarations; they can also be called alone, with
any :class:`~segio.registry.Registry`, which is how a plugin is tested before it is
installed and how the battery itself is tested on deliberately broken formats.
"""

from __future__ import annotations

import shutil
import threading
import traceback
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from segio.errors import SegioError
from segio.hookspecs import FormatSpec
from segio.io import read, write
from segio.model import Segmentation
from segio.registry import HEAD_SIZE, Registry, default_registry, is_installed
from segio.representations import Representation
from segio.testing.compare import assert_same_segmentation
from segio.testing.series import reference_series
from segio.testing.synthetic import small_segmentation, surface_segmentation

__all__ = [
    "RoundTripError",
    "check_refuses_other_formats",
    "check_rejects_garbage",
    "check_round_trip",
    "check_sniffing",
    "format_samples",
    "holds_voxels",
]


class RoundTripError(AssertionError):
    """What a format read back differs from what it was given.

    Distinct from the other failures of :func:`check_round_trip` (a writer that changes
    its input or creates no file), so that a case a format is declared unable to hold can
    be told from a bug.
    """


def holds_voxels(spec: FormatSpec) -> bool:
    """Whether the format's writer takes labelmaps; if not it holds closed surfaces or
    contours, from which a labelmap never comes back voxel-exact."""
    return Representation.BINARY_LABELMAP in spec.writes


def _fresh_path(folder: Path, stem: str, suffix: str) -> Path:
    candidate = folder / f"{stem}{suffix}"
    n = 1
    while candidate.exists():
        candidate = folder / f"{stem}_{n}{suffix}"
        n += 1
    return candidate


def _first_suffix(format_name: str, registry: Registry) -> str:
    spec = registry.format(format_name)
    if not spec.suffixes:
        raise ValueError(f"format {format_name!r} declares no suffix; pass suffix=")
    return spec.suffixes[0]


def check_round_trip(
    format_name: str,
    case: Segmentation,
    tmp_path: Path,
    *,
    suffix: str | None = None,
    compare: Mapping[str, Any] | None = None,
    registry: Registry | None = None,
    **write_options: Any,
) -> Segmentation:
    """Write ``case`` in ``format_name``, read it back, and require the same segmentation.

    The file is named with ``suffix`` (default: the format's first suffix) in
    ``tmp_path``. The writer must leave ``case`` unchanged. ``compare`` is passed to
    :func:`assert_same_segmentation` (for a format that cannot store, say, segment ids);
    ``write_options`` go to :func:`segio.write`. Returns what was read back; raises
    :class:`RoundTripError` when it differs.
    """
    registry = registry or default_registry()
    suffix = _first_suffix(format_name, registry) if suffix is None else suffix
    path = _fresh_path(Path(tmp_path), "round_trip", suffix)
    original = case.copy()
    write_options = _with_reference(format_name, case, path, registry, write_options)
    written = write(case, path, format=format_name, registry=registry, **write_options)
    if not path.exists():
        raise AssertionError(f"{format_name}: the writer did not create {path.name} ({written})")
    try:
        assert_same_segmentation(original, case, check_layers=True)
    except AssertionError as exc:
        raise AssertionError(f"{format_name}: the writer changed its input: {exc}") from None
    # A format that needs the source series to write (DICOM) also places what it reads on
    # that series' grid when given it; without it, omitted border slices shrink the grid.
    spec = registry.format(format_name)
    read_options = (
        {"reference": write_options["reference"]}
        if "reference" in write_options and "reference" in spec.read_options
        else {}
    )
    result = read(path, format=format_name, registry=registry, **read_options)
    try:
        assert_same_segmentation(original, result, **dict(compare or {}))
    except AssertionError as exc:
        raise RoundTripError(
            f"{format_name} round trip through {path.name} ({original!r} -> {result!r}): {exc}"
        ) from None
    return result


def _with_reference(
    format_name: str,
    case: Segmentation,
    path: Path,
    registry: Registry,
    options: Mapping[str, Any],
) -> dict[str, Any]:
    """Add ``reference=`` (a DICOM series on the case's grid) for formats that need one."""
    result = dict(options)
    spec = registry.format(format_name)
    if "reference" in spec.write_options and "reference" not in result and case.geometry:
        folder = _fresh_path(path.parent, "reference_series", "")
        result["reference"] = reference_series(case.geometry, folder)
    return result


def _call_with_deadline(
    function: Callable[[], object], seconds: float
) -> tuple[bool, object, BaseException | None]:
    """Run ``function`` in a thread: (finished, result, exception raised)."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["result"] = function()
        except BaseException as exc:  # reported to the caller, whatever it is
            outcome["error"] = exc

    worker = threading.Thread(target=target, name="segio-testing-deadline", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        return False, None, None
    return True, outcome.get("result"), outcome.get("error")


def _where(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    frame = frames[-1]
    return f" at {frame.filename}:{frame.lineno}"


def _magic_prefix(sniff: Callable[[bytes], bool] | None, valid: bytes, garbage: bytes) -> bytes:
    """The shortest start of ``valid`` that makes the sniffer accept it followed by garbage."""
    if sniff is not None:
        lengths = [*range(1, 65), 96, 128, 256, 348, 352, 512, 1024, 2048, HEAD_SIZE]
        for length in lengths:
            if length > len(valid):
                break
            if sniff((valid[:length] + garbage)[:HEAD_SIZE]):
                return valid[:length]
    return valid[:8]


def _place(payload: bytes, path: Path, directory: bool) -> Path:
    if directory:
        path.mkdir()
        (path / "data").write_bytes(payload)
    else:
        path.write_bytes(payload)
    return path


def _main_file(path: Path) -> Path:
    """The file to corrupt: ``path`` itself, or the largest file of a written folder."""
    if path.is_dir():
        files = sorted((p for p in path.rglob("*") if p.is_file()), key=lambda p: -p.stat().st_size)
        if not files:
            raise AssertionError(f"the writer produced an empty folder {path}")
        return files[0]
    return path


def check_rejects_garbage(
    format_name: str,
    tmp_path: Path,
    *,
    registry: Registry | None = None,
    timeout_s: float = 10.0,
    case: Segmentation | None = None,
    write_options: Mapping[str, Any] | None = None,
) -> None:
    """Reading garbage named like this format must raise :class:`SegioError`, and soon.

    Inputs, each given the format's suffix: random bytes; an empty file; a valid file of
    the format (written by its writer, when it has one) cut at 16 bytes, half its length
    and one byte short; and the format's magic bytes followed by random bytes. Each is
    read twice, once letting segio choose the format and once forcing ``format_name``
    (so the reader itself, not only the sniffer, sees the garbage). Any other exception,
    a successful read or a read running longer than ``timeout_s`` fails, and every
    failure is listed with where the wrong exception was raised. The valid file is written
    from ``case`` (default :func:`small_segmentation`) with ``write_options``.
    """
    registry = registry or default_registry()
    spec = registry.format(format_name)
    if spec.reader is None:
        raise ValueError(f"format {format_name!r} has no reader")
    folder = Path(tmp_path)
    suffix = spec.suffixes[0] if spec.suffixes else ""
    rng = np.random.default_rng(20240601)
    garbage = rng.bytes(2048)
    samples: list[tuple[str, bytes]] = [
        ("random bytes", rng.bytes(4096)),
        ("an empty file", b""),
    ]
    if spec.writer is not None:
        source = _fresh_path(folder, "valid", suffix)
        case = case or small_segmentation("axial")
        options = _with_reference(format_name, case, source, registry, write_options or {})
        write(case, source, format=format_name, registry=registry, **options)
        valid = _main_file(source).read_bytes()
        size = len(valid)
        for cut in sorted({min(16, size - 1), size // 2, size - 1}):
            if 0 < cut < size:
                samples.append((f"a valid file cut to {cut} of its {size} bytes", valid[:cut]))
        magic = _magic_prefix(spec.sniff, valid, garbage)
        samples.append(
            (f"the first {len(magic)} bytes of a valid file then random bytes", magic + garbage)
        )

    failures: list[str] = []
    for n, (what, payload) in enumerate(samples):
        path = _place(payload, _fresh_path(folder, f"garbage_{n}", suffix), spec.directory)
        for forced in (False, True):
            how = f"read(format={format_name!r})" if forced else "read()"

            def attempt(path: Path = path, forced: bool = forced) -> object:
                return read(path, format=format_name if forced else None, registry=registry)

            finished, result, error = _call_with_deadline(attempt, timeout_s)
            if not finished:
                failures.append(f"{what}: {how} still running after {timeout_s:g} s")
            elif error is None:
                failures.append(f"{what}: {how} returned {result!r} instead of raising")
            elif not isinstance(error, SegioError) or error.unexpected:
                # segio.read turns what a reader lets escape into a SegioError flagged
                # unexpected: the user sees one line, the battery still reports the reader.
                raw = (error.__cause__ or error) if isinstance(error, SegioError) else error
                failures.append(
                    f"{what}: {how} raised {type(raw).__name__}: {raw}{_where(raw)} "
                    "instead of a SegioError"
                )
    if failures:
        raise AssertionError(
            f"{format_name} accepts or mishandles bad input:\n  " + "\n  ".join(failures)
        )


def check_sniffing(
    format_name: str,
    tmp_path: Path,
    *,
    compare: Mapping[str, Any] | None = None,
    registry: Registry | None = None,
    case: Segmentation | None = None,
    write_options: Mapping[str, Any] | None = None,
) -> None:
    """A file of this format under a neutral name (no suffix) must still be recognised.

    Writes a small segmentation, copies it as ``noext`` and ``data.bin``, and requires
    that the registry choose ``format_name`` for both (only sniffers can tell) and that
    :func:`segio.read` returns the same segmentation (``compare`` as in
    :func:`check_round_trip`). When the writer produced sidecar files, which a renamed copy
    leaves behind, only the voxels and the grid are compared. Does nothing for a format
    without a sniffer (``sniff=None``): such a format is only ever chosen by suffix or by
    name. ``case`` (default :func:`small_segmentation` on the oblique grid) is written
    with ``write_options``.
    """
    registry = registry or default_registry()
    spec = registry.format(format_name)
    if spec.sniff is None:
        return
    if spec.writer is None or spec.reader is None:
        raise ValueError(f"format {format_name!r} needs a reader and a writer to check sniffing")
    folder = Path(tmp_path)
    original = case or small_segmentation("oblique")
    source = _fresh_path(folder, "sniff_source", spec.suffixes[0] if spec.suffixes else "")
    options = _with_reference(format_name, original, source, registry, write_options or {})
    written = write(original, source, format=format_name, registry=registry, **options)
    options = dict(compare or {})
    if len(written) > 1:  # the sidecars stay with the original name
        options.update(
            check_ids=False,
            check_names=False,
            check_terminology=False,
            check_properties=False,
            color_atol=1.0,
        )
    problems: list[str] = []
    for neutral in ("noext", "data.bin"):
        target = _fresh_path(folder, neutral, "")
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copyfile(source, target)
        head = b"" if target.is_dir() else target.read_bytes()[:HEAD_SIZE]
        claimants = [
            s.name
            for s in registry.formats.values()
            if s.sniff is not None
            and s.reader is not None
            and not target.is_dir()
            and s.sniff(head)
        ]
        try:
            chosen = registry.reader_for(target).name
        except SegioError as exc:
            problems.append(
                f"{target.name}: not recognised ({exc}); sniffers claiming it: {claimants}"
            )
            continue
        if chosen != format_name:
            problems.append(
                f"{target.name}: the registry chose {chosen!r}; sniffers claiming it: {claimants}"
            )
            continue
        try:
            result = read(target, registry=registry)
        except SegioError as exc:
            problems.append(f"{target.name}: recognised but not readable: {exc}")
            continue
        if result.provenance.get("format") != format_name:
            problems.append(f"{target.name}: read as {result.provenance.get('format')!r}")
        try:
            assert_same_segmentation(original, result, **options)
        except AssertionError as exc:
            problems.append(f"{target.name}: {exc}")
    if problems:
        raise AssertionError(f"{format_name} sniffing:\n  " + "\n  ".join(problems))


def format_samples(registry: Registry, folder: Path) -> dict[str, bytes]:
    """One valid file of every installed format that reads and writes: ``{name: bytes}``.

    A labelmap format writes :func:`~segio.testing.synthetic.small_segmentation`, a mesh
    format :func:`~segio.testing.synthetic.surface_segmentation`, into ``folder``. The
    bytes are those of the file written under the requested name (or the first file the
    writer reports, when it writes one per segment). A format whose writer fails on its
    sample, however it fails, is left out: its own battery reports that, not the battery
    of a plugin that happens to be installed beside it.
    """
    samples: dict[str, bytes] = {}
    for name, spec in sorted(registry.formats.items()):
        if spec.reader is None or spec.writer is None or not is_installed(spec):
            continue
        suffix = spec.suffixes[0] if spec.suffixes else ""
        case = small_segmentation("axial") if holds_voxels(spec) else surface_segmentation(2)
        path = _fresh_path(folder, f"sample_{name}", suffix)
        folder.mkdir(parents=True, exist_ok=True)
        try:
            options = _with_reference(name, case, path, registry, {})
            written = write(case, path, format=name, registry=registry, **options)
        except Exception:  # another plugin's bug is reported by its own battery
            continue
        main = (
            path if path.is_file() else next((Path(p) for p in written if Path(p).is_file()), None)
        )
        if main is not None:
            samples[name] = main.read_bytes()
    return samples


def check_refuses_other_formats(
    format_name: str,
    tmp_path: Path,
    *,
    registry: Registry | None = None,
    samples: Mapping[str, bytes] | None = None,
) -> None:
    """Another format's file under a neutral name must never be taken for this format's.

    Each sample of :func:`format_samples` (``samples``, or written into ``tmp_path``) but
    this format's own is copied to a file without a suffix, where only sniffers can tell,
    and the registry must not choose ``format_name`` for it: a sniffer that claims too
    much would steal other formats' files. A sniffer may accept a file another format
    claims first (a ``.seg.nrrd`` is also an NRRD): what counts is the choice made. Does
    nothing for a format without a sniffer, which is only chosen by suffix or by name.
    """
    registry = registry or default_registry()
    spec = registry.format(format_name)
    if spec.sniff is None or spec.reader is None:
        return
    folder = Path(tmp_path)
    if samples is None:
        samples = format_samples(registry, folder / "samples")
    stolen: list[str] = []
    for other, payload in sorted(samples.items()):
        if other == format_name:
            continue
        target = _fresh_path(folder, f"from_{other}", "")
        target.write_bytes(payload)
        try:
            chosen = registry.reader_for(target).name
        except SegioError:
            continue  # nobody claims it: not this format's doing
        if chosen == format_name:
            stolen.append(other)
    if stolen:
        raise AssertionError(
            f"{format_name} takes other formats' files for its own (its sniffer claims "
            f"them before theirs): {', '.join(stolen)}"
        )
