"""Conversion parameters are checked wherever they come from (issue 11, item 4).

Explicit requests (``ConversionParameters.set``, ``segio.convert(parameters=...)``, ``-P``)
are refused when the name is unknown (with the close matches) or the value out of range;
values a file stores fall back to the default with a warning naming the file.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

import segio
from segio.cli import cli
from segio.converters.labelmap_to_surface import SurfaceSettings, to_closed_surface
from segio.errors import ValidationError
from segio.representations import PARAMETERS, ConversionParameter, ConversionParameters
from segio.testing.synthetic import small_segmentation


@pytest.mark.parametrize(
    ("name", "close"),
    [
        ("Smoothing Factor", "'Smoothing factor'"),
        ("smoothing", "'Smoothing factor'"),
        ("Decimation", "'Decimation factor'"),
        ("Oversampling", "'Oversampling factor'"),
    ],
)
def test_an_unknown_name_is_refused_with_the_close_matches(name: str, close: str) -> None:
    params = ConversionParameters.slicer_defaults()
    with pytest.raises(ValidationError, match="unknown conversion parameter") as caught:
        params.set(name, "0.5")
    assert close in str(caught.value)
    assert name not in params


def test_an_unknown_name_without_close_match_lists_the_known_ones() -> None:
    with pytest.raises(ValidationError, match="known parameters: 'Decimation factor'"):
        ConversionParameters().set("Flux capacitor", "1")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Smoothing factor", "1e9"),
        ("Smoothing factor", "1e308"),
        ("Smoothing factor", "nan"),
        ("Smoothing factor", "inf"),
        ("Smoothing factor", "-1.5"),
        ("Smoothing factor", "strong"),
        ("Decimation factor", "1.5"),
        ("Decimation factor", "-0.1"),
        ("Compute surface normals", "2"),
        ("Conversion method", "2"),
        ("Conversion method", "0.5"),
        ("SurfaceNets smoothing", "yes please"),
        ("Joint smoothing", "-1"),
        ("Oversampling factor", "0"),
        ("Oversampling factor", "-2"),
        ("Oversampling factor", "1e6"),
        ("Oversampling factor", "B"),
        ("Oversampling factor", ""),
        ("Fractional labelmap oversampling factor", "1000"),
        ("Threshold fraction", "2"),
        ("Collapse labelmaps", "maybe"),
        ("Crop to reference image geometry", "3"),
        ("Reference image geometry", "1;2;3"),
        ("Reference image geometry", ";".join(["nan"] * 22)),
        ("Surface rasterization spacing", "0"),
        ("Surface rasterization spacing", "-1"),
        ("Surface rasterization spacing", "inf"),
        ("Contour rasterization spacing", "0"),
        ("Default slice thickness", "-1"),
        ("End capping", "3"),
    ],
)
def test_a_value_out_of_range_is_refused(name: str, value: str) -> None:
    params = ConversionParameters.slicer_defaults()
    before = params.value(name)
    with pytest.raises(ValidationError, match=f"conversion parameter '{name}'") as caught:
        params.set(name, value)
    assert "must be" in str(caught.value) and "\n" not in str(caught.value)
    assert params.value(name) == before


@pytest.mark.parametrize(
    ("name", "value", "stored"),
    [
        ("Smoothing factor", "0", "0"),
        ("Smoothing factor", "1", "1"),
        ("Smoothing factor", "-0.5", "-0.5"),  # Slicer's "off, value remembered"
        ("Decimation factor", " 0.8 ", "0.8"),
        ("Oversampling factor", "A", "A"),
        ("Oversampling factor", "2", "2"),
        ("Compute surface normals", "false", "0"),
        ("Joint smoothing", "true", "1"),
        ("Collapse labelmaps", "0", "0"),
        ("Reference image geometry", "", ""),
        ("Reference image geometry", ";".join(["1"] * 16 + ["0", "9"] * 3), None),
        ("Surface rasterization spacing", "0.25", "0.25"),
        ("End capping", "2", "2"),
        ("Default slice thickness", "0.0", "0.0"),
    ],
)
def test_values_in_range_are_kept(name: str, value: str, stored: str | None) -> None:
    params = ConversionParameters()
    params.set(name, value)
    assert params.value(name) == (value if stored is None else stored)
    assert params[name].description == PARAMETERS[name].description


def test_a_stored_value_out_of_range_falls_back_to_the_default_with_a_warning() -> None:
    stored = [
        ConversionParameter("Smoothing factor", "1e9", "kept description"),
        ConversionParameter("Decimation factor", "0.3"),
    ]
    with pytest.warns(UserWarning, match="scan.seg.nrrd: stored conversion parameter") as got:
        params = ConversionParameters(stored, source="scan.seg.nrrd")
    assert len(got) == 1 and "'Smoothing factor'" in str(got[0].message)
    assert "using the default '0.5'" in str(got[0].message)
    assert params.value("Smoothing factor") == "0.5"
    assert params["Smoothing factor"].description == "kept description"
    assert params.value("Decimation factor") == "0.3"


def test_stored_unknown_names_are_kept_and_misspellings_warned() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        params = ConversionParameters([ConversionParameter("Some extension's knob", "7")])
    assert params.value("Some extension's knob") == "7"
    with pytest.warns(UserWarning, match="did you mean 'Smoothing factor'"):
        params = ConversionParameters([ConversionParameter("Smoothing Factor", "0")], source="x")
    assert params.value("Smoothing Factor") == "0"  # kept for the round trip, not used
    assert params.number("Smoothing factor") == 0.5


def test_a_file_full_of_bad_parameters_gives_one_warning() -> None:
    stored = [ConversionParameter("Smoothing factor", f"{n}e9") for n in range(1, 3000)]
    stored += [ConversionParameter(f"Smoothing factor{n}", "0") for n in range(3000)]
    with pytest.warns(UserWarning) as got:
        params = ConversionParameters(stored, source="many.seg.nrrd")
    assert len(got) == 1
    assert str(got[0].message).startswith("many.seg.nrrd: stored conversion parameter")
    assert "(and 5998 more)" in str(got[0].message)
    assert params.value("Smoothing factor") == "0.5"


def test_copies_do_not_warn_again() -> None:
    with pytest.warns(UserWarning):
        params = ConversionParameters([ConversionParameter("Smoothing Factor", "0")])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clone = params.copy()
    assert list(clone) == list(params)


def test_segio_convert_refuses_a_bad_parameter_before_writing(tmp_path: Path) -> None:
    source = segio.write(small_segmentation(), tmp_path / "s.seg.nrrd")[0]
    for parameters, wanted in (
        ({"Smoothing Factor": "0"}, "did you mean 'Smoothing factor'"),
        ({"Smoothing factor": "1e9"}, "a number from -1 to 1"),
    ):
        with pytest.raises(ValidationError, match=wanted):
            segio.convert(source, tmp_path / "out.stl", parameters=parameters)
        assert not list(tmp_path.glob("out*"))


def test_the_command_line_refuses_a_bad_parameter_in_one_line(tmp_path: Path) -> None:
    source = segio.write(small_segmentation(), tmp_path / "s.seg.nrrd")[0]
    result = CliRunner().invoke(
        cli, ["convert", str(source), str(tmp_path / "o.stl"), "-P", "Smoothing factr=0"]
    )
    assert result.exit_code != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "did you mean 'Smoothing factor'" in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_a_huge_stored_smoothing_factor_neither_hangs_nor_overflows(tmp_path: Path) -> None:
    """A seg.nrrd storing ``Smoothing factor|1e300`` is converted with the default."""
    source = segio.write(small_segmentation(), tmp_path / "s.seg.nrrd")[0]
    data = source.read_bytes()
    header, separator, body = data.partition(b"\n\n")
    assert b"Smoothing factor|0.5|" in header
    crafted = tmp_path / "huge.seg.nrrd"
    crafted.write_bytes(
        header.replace(b"Smoothing factor|0.5|", b"Smoothing factor|1e300|") + separator + body
    )
    with pytest.warns(UserWarning, match="'Smoothing factor' is '1e300'") as got:
        segmentation = segio.read(crafted)
    assert str(got[0].message).startswith(f"{crafted}: stored conversion parameter")
    assert segmentation.conversion_parameters.value("Smoothing factor") == "0.5"
    start = time.monotonic()
    surfaces = to_closed_surface(segmentation)
    assert time.monotonic() - start < 30
    assert all(not s.is_empty for s in surfaces.surfaces.values())


def test_defaults_live_in_one_place() -> None:
    """The converters' settings take their defaults from PARAMETERS, the only copy."""
    settings = SurfaceSettings.from_parameters(ConversionParameters())
    assert settings == SurfaceSettings()
    assert settings.smoothing == float(PARAMETERS["Smoothing factor"].default)
