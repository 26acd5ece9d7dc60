"""segio's version, in a module of its own.

``pyproject.toml`` reads it (setuptools' dynamic version) and plugins that stamp files with
it (DICOM Software Versions) import it from here, never from the package root, which would
tie a plugin to the verbs that ``segio/__init__.py`` re-exports.
"""

__version__ = "0.1.0"
