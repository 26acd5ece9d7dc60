"""The one exception family segio raises.

Every error a user can cause derives from :class:`SegioError`, so callers catch one
class. Messages follow one shape: *which file*, *what is wrong*, *what to do*, so the
command line can print them as they are, without a traceback.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


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


class PluginError(SegioError):
    """A plugin breaks segio's plugin contract: two plugins declare one format name, a
    hook implementation matches no hook, or a declaration hook fails. Raised for what
    cannot be left out without guessing (two formats with one name); a plugin that only
    breaks itself is left out with a warning and listed as broken by ``segio formats``."""


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


def located(
    exc: SegioError,
    path: str | os.PathLike[str],
    *,
    reason: str | None = None,
    hint: str | None = None,
    kind: type[SegioError] | None = None,
) -> SegioError:
    """``exc`` again, naming ``path`` (and ``reason``/``hint`` when given), of class ``kind``
    (default its own); its ``unexpected`` flag kept. A subclass whose constructor takes
    other arguments becomes a plain ``kind`` or :class:`SegioError`."""
    cls = kind or type(exc)
    reason = exc.reason if reason is None else reason
    hint = exc.hint if hint is None else hint
    try:
        moved = cls(reason, path=path, hint=hint)
    except TypeError:  # a subclass with its own signature
        moved = SegioError(reason, path=path, hint=hint)
    moved.unexpected = exc.unexpected
    return moved


@contextmanager
def reading(
    path: str | os.PathLike[str],
    what: str,
    *,
    catch: tuple[type[Exception], ...] = (Exception,),
) -> Iterator[None]:
    """Turn a failure inside a reader's block into an error that names ``path``.

    The one place a plugin's reader gets this from (outside plugins included): a parser
    deep in a plugin raises without knowing the file, and a library raises whatever it
    likes on a corrupt one, yet the user must be told which file is at fault.

    - A :class:`SegioError` naming no file is given ``path``, keeping its class
      (:class:`LimitError`, :class:`GeometryError`, :class:`MissingDependencyError` stay
      what they are); a rule of the model (:class:`ValidationError`) becomes a
      :class:`ReadError`: here the file breaks the rule, not the caller.
    - :class:`MemoryError` and :class:`OSError` become a ReadError saying so.
    - Any exception of ``catch`` (by default every one: a corrupt file breaks parsers in
      every possible way) becomes ``ReadError("not a readable <what> file (...)")``, chained
      to the original. A plugin that refuses bad files itself and wants a library's
      exception to reach :func:`segio.read` as *unexpected* (the conformance battery
      reports those) passes ``catch=()``.
    """
    try:
        yield
    except SegioError as exc:
        fault = isinstance(exc, ValidationError)
        if exc.path is not None and not fault:
            raise
        raise located(exc, exc.path or path, kind=ReadError if fault else None) from exc
    except MemoryError as exc:
        raise ReadError(
            "not enough memory to read this file",
            path=path,
            hint="free memory or use a larger machine",
        ) from exc
    except OSError as exc:
        where = exc.filename if isinstance(exc.filename, str) else None
        raise ReadError(
            f"cannot read: {exc.strerror or one_line(exc) or type(exc).__name__}",
            path=where or path,
        ) from exc
    except catch as exc:
        detail = one_line(exc)
        raise ReadError(
            f"not a readable {what} file ({type(exc).__name__}{': ' + detail if detail else ''})",
            path=path,
            hint="the file may be truncated or not of this format",
        ) from exc
