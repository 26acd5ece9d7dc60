"""An example segio format plugin: a labelmap and its segments in one NumPy ``.seg.npz``.

:mod:`segio_plugin_example.register` declares the format (imported at start-up, so it
imports nothing heavy); :mod:`segio_plugin_example.npz_labelmap` reads and writes it
(imported only when a file is read or written).
"""
