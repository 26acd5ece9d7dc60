"""Representation names and Slicer's conversion parameters."""

from __future__ import annotations

import re

import pytest

from segio.errors import ValidationError
from segio.representations import (
    PARAMETERS,
    ConversionParameter,
    ConversionParameters,
    Representation,
)

#: Spec §2.6, in rule order, without SlicerRT's two planar-contour parameters.
SLICER_DEFAULTS = [
    ("Decimation factor", "0.0"),
    ("Smoothing factor", "0.5"),
    ("Compute surface normals", "1"),
    ("Conversion method", "0"),
    ("SurfaceNets smoothing", "0"),
    ("Joint smoothing", "0"),
    ("Reference image geometry", ""),
    ("Oversampling factor", "1"),
    ("Crop to reference image geometry", "0"),
    ("Collapse labelmaps", "1"),
    ("Fractional labelmap oversampling factor", "1"),
    ("Threshold fraction", "0.5"),
]


# -- Representation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "member"),
    [
        ("Binary labelmap", Representation.BINARY_LABELMAP),
        ("Closed surface", Representation.CLOSED_SURFACE),
        ("Planar contour", Representation.PLANAR_CONTOURS),
        ("Fractional labelmap", Representation.FRACTIONAL_LABELMAP),
        ("binary LABELMAP", Representation.BINARY_LABELMAP),
        ("  Closed surface\n", Representation.CLOSED_SURFACE),
        ("BINARY_LABELMAP", Representation.BINARY_LABELMAP),
        ("closed_surface", Representation.CLOSED_SURFACE),
        ("PLANAR_CONTOURS", Representation.PLANAR_CONTOURS),
        ("fractional_labelmap", Representation.FRACTIONAL_LABELMAP),
        ("Planar contours", Representation.PLANAR_CONTOURS),
        ("planar CONTOURS", Representation.PLANAR_CONTOURS),
    ],
)
def test_from_name(name: str, member: Representation) -> None:
    assert Representation.from_name(name) is member


def test_values_are_slicer_names() -> None:
    assert [m.value for m in Representation] == [
        "Binary labelmap",
        "Closed surface",
        "Planar contour",
        "Fractional labelmap",
    ]


@pytest.mark.parametrize("name", ["Ribbon model", "", "labelmap", "Binary labelmaps"])
def test_from_name_rejects_unknown_names(name: str) -> None:
    with pytest.raises(ValidationError, match="unknown representation") as info:
        Representation.from_name(name)
    assert "Binary labelmap" in str(info.value)


# -- ConversionParameter ------------------------------------------------------------------


@pytest.mark.parametrize("char", ["&", "|"])
@pytest.mark.parametrize("field", ["name", "value", "description"])
def test_conversion_parameter_rejects_serialisation_separators(char: str, field: str) -> None:
    fields = {"name": "Smoothing factor", "value": "0.5", "description": "text"}
    fields[field] = f"a{char}b"
    with pytest.raises(ValidationError, match=re.escape("'&' or '|'")):
        ConversionParameter(**fields)


def test_conversion_parameter_is_frozen() -> None:
    p = ConversionParameter("Smoothing factor", "0.5")
    assert p.description == ""
    with pytest.raises(AttributeError):
        p.value = "1"  # type: ignore[misc]


# -- ConversionParameters -----------------------------------------------------------------


def test_slicer_defaults_names_values_and_order() -> None:
    params = ConversionParameters.slicer_defaults()
    assert [(p.name, p.value) for p in params.values()] == SLICER_DEFAULTS
    assert list(params) == [name for name, _ in SLICER_DEFAULTS]
    assert len(params) == 12
    assert "Default slice thickness" not in params
    assert "End capping" not in params


def test_slicer_defaults_carry_slicer_descriptions() -> None:
    params = ConversionParameters.slicer_defaults()
    assert all(p.description for p in params.values())
    assert params["Joint smoothing"].description == "Perform joint smoothing."
    assert params["Smoothing factor"].description == (
        "Smoothing factor. Range: 0.0 (no smoothing) to 1.0 (strong smoothing)."
    )
    assert params["Oversampling factor"].description.endswith(
        'If it has the value "A", then automatic oversampling is calculated.'
    )


def test_slicer_defaults_are_fresh_objects() -> None:
    a = ConversionParameters.slicer_defaults()
    a.set("Smoothing factor", "0.9")
    assert ConversionParameters.slicer_defaults().value("Smoothing factor") == "0.5"


def test_set_keeps_the_known_description_and_position() -> None:
    params = ConversionParameters.slicer_defaults()
    before = params["Smoothing factor"].description
    params.set("Smoothing factor", "0.2")
    assert params["Smoothing factor"] == ConversionParameter("Smoothing factor", "0.2", before)
    assert list(params).index("Smoothing factor") == 1
    params.set("Smoothing factor", "0.3", "mine")
    assert params["Smoothing factor"].description == "mine"
    params.set("Smoothing factor", "0.4")
    assert params["Smoothing factor"].description == "mine"


def test_set_restores_the_default_description_of_a_known_name() -> None:
    params = ConversionParameters()
    params.set("Joint smoothing", "1")
    assert params["Joint smoothing"].description == "Perform joint smoothing."
    params.set("Surface rasterization spacing", "0.5")
    assert params["Surface rasterization spacing"].description.startswith("Voxel size (mm)")
    assert list(params) == ["Joint smoothing", "Surface rasterization spacing"]


def test_set_rejects_separators() -> None:
    params = ConversionParameters.slicer_defaults()
    with pytest.raises(ValidationError):
        params.set("Smoothing factor", "0.5|1")
    assert params.value("Smoothing factor") == "0.5"


def test_value_and_number() -> None:
    params = ConversionParameters.slicer_defaults()
    assert params.value("Decimation factor") == "0.0"
    assert params.value("missing") is None
    assert params.value("missing", "d") == "d"
    assert params.number("Smoothing factor") == 0.5
    assert params.number("Collapse labelmaps") == 1.0
    params.set("Smoothing factor", "0.25")
    assert params.number("Smoothing factor") == 0.25
    empty = ConversionParameters()  # an absent parameter has its one registered default
    assert empty.number("Default slice thickness") == float(
        PARAMETERS["Default slice thickness"].default
    )
    with pytest.raises(KeyError):
        params["missing"]


def test_number_rejects_non_numeric_text() -> None:
    params = ConversionParameters.slicer_defaults()
    params.set("Oversampling factor", "A")  # Slicer's automatic oversampling: not a number
    with pytest.raises(ValidationError, match="should be a number"):
        params.number("Oversampling factor")


def test_remove_and_copy() -> None:
    params = ConversionParameters.slicer_defaults()
    clone = params.copy()
    params.remove("Joint smoothing")
    params.remove("not there")  # no error
    assert "Joint smoothing" not in params
    assert "Joint smoothing" in clone
    clone.set("Threshold fraction", "0.7")
    assert params.value("Threshold fraction") == "0.5"
    assert list(clone) == [name for name, _ in SLICER_DEFAULTS]


def test_later_duplicate_name_wins() -> None:
    params = ConversionParameters(
        [
            ConversionParameter("a", "1"),
            ConversionParameter("b", "2"),
            ConversionParameter("a", "3"),
        ]
    )
    assert list(params) == ["a", "b"]
    assert params.value("a") == "3"


def test_repr_lists_values() -> None:
    params = ConversionParameters([ConversionParameter("Smoothing factor", "0.5")])
    assert repr(params) == "ConversionParameters(Smoothing factor='0.5')"
