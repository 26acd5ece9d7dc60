"""The one exception family segio raises.

Every error a user can cause derives from :class:`SegioError`, so callers catch one
class. Messages follow one shape: *which file*, *what is wrong*, *what to do*, so the
command line can print them as they are, without a traceback.
"""

from __future__ import annotations

import os


class SegioError(Exception):
    """Base class of every error segio raises on purpose.

    Parameters
    ----------
    message:
        What is wrong, in one sentence.
    path:
        The file concerned, if any; it is put in front of the message.
    hint:
        What the user can do about it; appended to the message.
    """

    #: True when :func:`segio.read` or :func:`segio.write` made this error from a library
    #: exception (``ValueError``, ``OverflowError``, ...) that a plugin let escape: the
    #: user sees one line, and the conformance battery reports the plugin.
    unexpected: bool = False

    def __init__(
        self,
        message: str,
        *,
        path: str | os.PathLike[str] | None = None,
        hint: str | None = None,
    ) -> None:
        self.path = os.fspath(path) if path is not None else None
        self.reason = one_line(message) or "unknown error (no reason was given)"
        self.hint = one_line(hint) if hint else None
        message, hint = self.reason, self.hint
        text = f"{self.path}: {message}" if self.path else message
        if hint:
            text = f"{text} ({hint})"
        super().__init__(text)


def one_line(text: object) -> str:
    """``text`` folded onto one line: messages from libraries (nibabel's span several) and
    names from files must not break the one-line form the command line prints."""
    return " ".join(str(text).split())


class UnknownFormatError(SegioError):
    """No installed format plugin recognises the file or the requested format."""


class MissingDependencyError(SegioError):
    """A format is known but the library it needs is not installed."""


class ReadError(SegioError):
    """A file is of a known format but cannot be read: truncated, corrupt or invalid."""


class LimitError(ReadError):
    """A file would need more memory than it can hold or than ``SEGIO_MAX_MEMORY`` allows.

    Raised before the allocation; the message says how much and which setting raises it.
    """


class WriteError(SegioError):
    """A segmentation cannot be written in the requested format or place."""


class GeometryError(SegioError):
    """An image geometry is invalid, or two geometries that must agree do not."""


class ValidationError(SegioError):
    """A segmentation, segment or parameter breaks a rule of the model."""
