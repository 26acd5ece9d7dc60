"""A self-contained HTML page that shows the closed surfaces in three.js (write only).

:mod:`.page` encodes the meshes and writes the page; ``viewer.js`` is the page's own code
and ``vendor/`` holds the pinned three.js bundle it runs on (``vendor/build.py`` rebuilds
it from npm). The page needs no server and no network: everything is inlined.
"""
