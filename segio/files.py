"""Atomic output: a write either produces every file it promised, or none.

A writer asks :meth:`OutputFiles.stage` for a temporary path next to each file it will
produce (an image and its sidecar, one file per layer, ...). When the writer returns,
all staged files are renamed into place; if it raises, they are deleted. Temporary files
live in the target folder so the final rename is atomic on every local file system, and
their names start with ``.`` and end with ``.segio-tmp`` so a crash leaves no file that
looks like output.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from types import TracebackType

from segio.errors import WriteError


class OutputFiles:
    """Stage temporary files and commit them together (a context manager)."""

    def __init__(self, *, force: bool = False) -> None:
        self.force = force
        self._staged: dict[Path, Path] = {}

    def stage(self, target: str | os.PathLike[str]) -> Path:
        """A temporary path whose content will become ``target`` on success."""
        final = Path(target).absolute()
        if final in self._staged:
            raise WriteError("the writer produced this file twice", path=final)
        if final.exists() and not self.force:
            raise WriteError(
                "the output exists already",
                path=final,
                hint="choose another name or pass force=True (--force)",
            )
        if final.is_dir():
            raise WriteError("a folder has this name", path=final)
        if not final.parent.is_dir():
            raise WriteError("the output folder does not exist", path=final, hint="create it first")
        try:
            handle, name = tempfile.mkstemp(
                prefix=f".{final.name}.", suffix=".segio-tmp", dir=final.parent
            )
        except OSError as exc:
            raise WriteError(f"cannot write in this folder: {exc.strerror}", path=final) from exc
        os.close(handle)
        self._staged[final] = Path(name)
        return Path(name)

    @property
    def targets(self) -> list[Path]:
        """The files that will exist once the write succeeds, in staging order."""
        return list(self._staged)

    def commit(self) -> list[Path]:
        """Move every staged file into place; on failure put back what was there before."""
        for final in self._staged:
            if final.is_dir() or (final.exists() and not self.force):
                self.discard()
                raise WriteError(
                    "a folder has this name" if final.is_dir() else "the output appeared meanwhile",
                    path=final,
                )
        mode = 0o666 & ~_umask()
        backups: dict[Path, Path] = {}
        placed: list[Path] = []
        try:
            for final, temporary in self._staged.items():
                temporary.chmod(mode)  # mkstemp makes 0600 files; outputs get the usual mode
                if final.exists():  # only with force: keep the old file until all succeed
                    backup = temporary.with_name(temporary.name + ".old")
                    final.replace(backup)
                    backups[final] = backup
                temporary.replace(final)
                placed.append(final)
        except OSError as exc:
            for final in placed:
                final.unlink(missing_ok=True)
            for final, backup in backups.items():
                backup.replace(final)
            self.discard()
            raise WriteError(
                f"cannot move the output into place: {exc.strerror}", path=exc.filename
            ) from exc
        for backup in backups.values():
            backup.unlink(missing_ok=True)
        return self.targets

    def discard(self) -> None:
        for temporary in self._staged.values():
            temporary.unlink(missing_ok=True)

    def __enter__(self) -> OutputFiles:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current
