"""Rebuild ``three-viewer.min.js``: the parts of three.js the viewer page uses, from npm.

Run from the repository root with node and npm on PATH::

    python plugins/html/vendor/build.py

It installs the pinned three.js and esbuild into a temporary folder (npm, the ordinary
client), bundles ``entry.js`` (the names the page imports, OrbitControls included) into
one minified ES module that keeps three.js' licence comment, and copies three.js' LICENSE
beside it. To move to another three.js release, change ``THREE`` here and
``THREE_VERSION`` in ``plugins/html/page.py`` (the writer refuses a bundle of another
release), run this, then the tests (``tests/plugins/test_html.py``).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

THREE = "0.187.0"
ESBUILD = "0.28.2"
HERE = Path(__file__).resolve().parent


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        subprocess.run(
            [
                "npm",
                "install",
                "--prefix",
                str(work),
                "--no-save",
                "--silent",
                f"three@{THREE}",
                f"esbuild@{ESBUILD}",
            ],
            check=True,
        )
        modules = work / "node_modules"
        shutil.copy2(HERE / "entry.js", work / "entry.js")
        subprocess.run(
            [
                str(modules / ".bin" / "esbuild"),
                "entry.js",
                "--bundle",
                "--format=esm",
                "--minify",
                "--legal-comments=inline",
                "--target=es2022",
                "--outfile=three-viewer.min.js",
            ],
            check=True,
            cwd=work,
        )
        shutil.copy2(work / "three-viewer.min.js", HERE / "three-viewer.min.js")
        shutil.copy2(modules / "three" / "LICENSE", HERE / "LICENSE")
    print(f"three.js {THREE} bundled into {HERE / 'three-viewer.min.js'}")


if __name__ == "__main__":
    main()
