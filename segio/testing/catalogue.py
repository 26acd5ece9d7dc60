"""Names, colours and coded terminology for synthetic segments.

Real segmentations carry anatomical names with SNOMED CT codes, laterality modifiers,
lesions coded with an anatomic region, names in every script, and colours stored with
full precision. The synthetic segmentations of :mod:`segio.testing.synthetic` draw their
segments' identity from here so that a format that drops a modifier, mangles a name or
rounds a colour to 1/255 is caught.
"""

from __future__ import annotations

import colorsys

import numpy as np

from segio.terminology import DEFAULT_TISSUE, Code, Terminology

__all__ = ["segment_colors", "segment_names", "segment_terminology"]

_ANATOMY = Code("SCT", "123037004", "Anatomical Structure")
_ALTERED = Code("SCT", "49755003", "Morphologically Altered Structure")
_LEFT = Code("SCT", "7771000", "Left")
_RIGHT = Code("SCT", "24028007", "Right")
_SIDES = {"left": _LEFT, "right": _RIGHT}


def _anatomy(value: str, meaning: str, side: str | None = None) -> Terminology:
    return Terminology(_ANATOMY, Code("SCT", value, meaning), _SIDES[side] if side else None)


def _catalogue() -> list[tuple[str, Terminology]]:
    """Anatomical names (TotalSegmentator style) with their SNOMED CT codes, in order.

    The first entries are the ones small tests see: a plain organ, one with a laterality
    modifier, and a lesion with an anatomic region and region modifier.
    """
    entries: list[tuple[str, Terminology]] = [
        ("liver", _anatomy("10200004", "Liver")),
        ("kidney_left", _anatomy("64033007", "Kidney", "left")),
        ("spleen", _anatomy("78961009", "Spleen")),
        (
            "kidney_left_mass",
            Terminology(
                _ALTERED,
                Code("SCT", "4147007", "Mass"),
                region=Code("SCT", "64033007", "Kidney"),
                region_modifier=_LEFT,
            ),
        ),
        ("aorta", _anatomy("15825003", "Aorta")),
        ("kidney_right", _anatomy("64033007", "Kidney", "right")),
    ]
    singles = [
        ("pancreas", "15776009", "Pancreas"),
        ("gallbladder", "28231008", "Gallbladder"),
        ("stomach", "69695003", "Stomach"),
        ("inferior_vena_cava", "64131007", "Inferior vena cava"),
        ("esophagus", "32849002", "Esophagus"),
        ("trachea", "44567001", "Trachea"),
        ("heart_myocardium", "74281007", "Myocardium"),
        ("pulmonary_artery", "81040000", "Pulmonary artery"),
        ("brain", "12738006", "Brain"),
        ("urinary_bladder", "89837001", "Urinary bladder"),
        ("small_bowel", "30315005", "Small Intestine"),
        ("duodenum", "38848004", "Duodenum"),
        ("colon", "71854001", "Colon"),
        ("prostate", "41216001", "Prostate"),
        ("thyroid_gland", "69748006", "Thyroid"),
        ("spinal_cord", "2748008", "Spinal cord"),
        ("sacrum", "54735007", "Sacrum"),
        ("sternum", "56873002", "Sternum"),
        ("portal_vein", "32764006", "Portal vein"),
        ("superior_vena_cava", "48345005", "Superior vena cava"),
        ("heart_atrium_left", "82471001", "Left atrium"),
        ("heart_atrium_right", "73829009", "Right atrium"),
        ("heart_ventricle_left", "87878005", "Left ventricle"),
        ("heart_ventricle_right", "53085002", "Right ventricle"),
        ("face", "89545001", "Face"),
        ("skull", "89546000", "Skull"),
        ("costal_cartilages", "50016007", "Costal cartilage"),
    ]
    entries += [(name, _anatomy(value, meaning)) for name, value, meaning in singles]
    paired = [
        ("adrenal_gland", "23451007", "Adrenal gland"),
        ("lung", "39607008", "Lung"),
        ("femur", "71341001", "Femur"),
        ("humerus", "85050009", "Humerus"),
        ("scapula", "79601000", "Scapula"),
        ("clavicula", "51299004", "Clavicle"),
        ("gluteus_maximus", "206007", "Gluteus maximus muscle"),
        ("gluteus_medius", "78333006", "Gluteus medius muscle"),
        ("gluteus_minimus", "75297007", "Gluteus minimus muscle"),
        ("iliac_artery", "73634005", "Common iliac artery"),
        ("iliac_vena", "46027005", "Common iliac vein"),
    ]
    for side in ("left", "right"):
        entries += [(f"{name}_{side}", _anatomy(v, m, side)) for name, v, m in paired]
    ribs = [
        ("48535007", "First rib"),
        ("78247007", "Second rib"),
        ("25888004", "Third rib"),
        ("25523003", "Fourth rib"),
        ("15339008", "Fifth rib"),
        ("59558009", "Sixth rib"),
        ("24915002", "Seventh rib"),
        ("5953002", "Eighth rib"),
        ("22565002", "Ninth rib"),
        ("77644006", "Tenth rib"),
        ("58830002", "Eleventh rib"),
        ("43993008", "Twelfth rib"),
    ]
    for side in ("left", "right"):
        entries += [
            (f"rib_{side}_{n}", _anatomy(v, m, side)) for n, (v, m) in enumerate(ribs, start=1)
        ]
    vertebrae = {
        "C1": "14806007",
        "C2": "39976000",
        "C3": "113205007",
        "C4": "5329002",
        "C5": "36978003",
        "C6": "36054005",
        "C7": "87391001",
        "T1": "64864005",
        "T2": "53733008",
        "T3": "1626008",
        "T4": "73071006",
        "T5": "56401006",
        "T6": "45296009",
        "T7": "62487009",
        "T8": "11068009",
        "T9": "82687006",
        "T10": "7610001",
        "T11": "12989004",
        "T12": "23215003",
        "L1": "66794005",
        "L2": "14293000",
        "L3": "36470004",
        "L4": "11994002",
        "L5": "49668003",
    }
    entries += [
        (f"vertebrae_{level}", _anatomy(value, f"{level} vertebra"))
        for level, value in vertebrae.items()
    ]
    return entries


_CATALOGUE = _catalogue()

#: Names that break naive encoders: CJK, combining accents (NFD), right-to-left text,
#: 4-byte emoji, colons, quotes, ampersands. None holds ``|``, ``~``, ``^`` or a newline.
#: They follow the order of the anatomical catalogue, so each name means what its
#: terminology says (liver, left kidney, spleen, left kidney mass, aorta, ...).
_UNICODE_NAMES: tuple[str, ...] = (
    "Leber ✓",
    "Niere links: Rinde",
    "脾臓",
    "masse rénale « gauche »",
    "אבי העורקים",
    "rein droit, cortex",
    "pa\u0301ncreas",
    "vesícula biliar ½ \"quoted\" 'name'",
    "Magen 🫃",
    "vena cava inferior; IVC = & %",
    "Пищевод",
    "τραχεία",
    "🫀 Herz",
    "फुफ्फुसीय धमनी",
)


def segment_names(n: int, *, unicode_names: bool = False) -> list[str]:
    """``n`` distinct segment names: anatomical ones, or unicode ones that test encoders."""
    if unicode_names:
        size = len(_UNICODE_NAMES)
        return [
            _UNICODE_NAMES[t % size] + (f" {t // size + 1}" if t >= size else "") for t in range(n)
        ]
    return [_CATALOGUE[t][0] if t < len(_CATALOGUE) else f"structure_{t + 1}" for t in range(n)]


def segment_terminology(index: int) -> Terminology:
    """The coded meaning of the ``index``-th catalogue name (a generic tissue past its end)."""
    return _CATALOGUE[index][1] if index < len(_CATALOGUE) else DEFAULT_TISSUE


def segment_colors(n: int, rng: np.random.Generator) -> list[tuple[float, float, float]]:
    """Distinct full-precision colours (never multiples of 1/255), spread by golden angle."""
    start = float(rng.uniform())
    colors = []
    for index in range(n):
        hue = (start + index * 0.6180339887498949) % 1.0
        saturation = 0.45 + 0.4 * float(rng.uniform())
        value = 0.6 + 0.35 * float(rng.uniform())
        r, g, b = colorsys.hsv_to_rgb(hue, saturation, value)
        colors.append((float(r), float(g), float(b)))
    return colors
