"""Helpers for testing segio and its format plugins, built-in or outside.

* :mod:`segio.testing.synthetic`: test grids and synthetic segmentations that look like
  anatomy, traps included (oblique anisotropic grids, cavities, islands, segments cut by
  the border, overlaps, empty segments), and closed-surface ones for mesh formats;
  :mod:`segio.testing.catalogue` gives their names, colours and codes.
* :mod:`segio.testing.compare`: :func:`~segio.testing.compare.assert_same_segmentation`,
  an exact comparison that says what differs.
* :mod:`segio.testing.series`: a fake DICOM reference series on any grid.
* :mod:`segio.testing.checks`: the conformance checks, one function per promise.
* :mod:`segio.testing.conformance`: :class:`~segio.testing.conformance.FormatConformance`,
  the whole battery as a pytest class a plugin subclasses (the only module that imports
  pytest).

Import from the submodules; this package exports nothing itself, so that importing one
helper never imports pytest or a format library. Overlap and distance measures are not
test helpers: they live in :mod:`segio.analysis`.
"""
