"""Reader and writer options as they arrive: Python values, or text from ``-O name=value``.

One reading of yes/no words and of named choices for every format; each format decides
what a value it cannot read means (an error of its own kind, or the default).
"""

from __future__ import annotations

from collections.abc import Sequence

TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off"})


def flag(value: object) -> bool | None:
    """True or False for a bool or a yes/no word (any case); None for anything else."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    return None


def choice(value: object, allowed: Sequence[str]) -> str | None:
    """The entry of ``allowed`` that ``value`` names (any case, spaces trimmed), or None."""
    text = str(value).strip().lower()
    return next((entry for entry in allowed if entry.lower() == text), None)
