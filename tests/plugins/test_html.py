"""The HTML viewer page: opened from disk in headless Chromium with the network off.

* Every segment's exact colour is on the screenshot (``#flat``: unlit colours), and
  unticking one segment's box (``#hide=ID``) loses exactly that colour.
* No request leaves the page: Chromium's own net log (browser-initiated update checks
  excepted) has no request from the page, and the page fetched nothing but data:/blob:.
* Names cannot break out of the page; folders follow the terminology; the embedded
  meshes decode to the segments' surfaces (oblique grid, through the converters) and are
  much smaller than the GLB.

Chromium and three.js come from ``make tools``; without them these tests fail, not skip.
"""

from __future__ import annotations

import base64
import gzip
import html
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray
from segio_plugins.html.page import THREE_VERSION, folder_paths
from segio_plugins.meshes.common import parts_of

import segio
from segio import Segmentation
from segio.errors import ValidationError
from segio.representations import Representation
from segio.testing.synthetic import small_segmentation, surface_segmentation

pytestmark = pytest.mark.interop

ROOT = Path(__file__).resolve().parents[2]
VENDOR = ROOT / "plugins" / "html" / "vendor"
_OFFLINE = [
    "--host-resolver-rules=MAP * ~NOTFOUND",  # no name resolves: nothing could be fetched
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def _chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.fail("chromium is missing: run `make tools` (it installs the interop tools)")
    return found


def open_page(
    page: Path, hash_: str = "", size: tuple[int, int] = (640, 480)
) -> tuple[str, NDArray[np.int64], list[str]]:
    """The page from file:// offline: (DOM after the scripts, RGB screenshot, URLs the page
    itself asked the network for, from Chromium's net log)."""
    from PIL import Image

    shot, log = page.with_suffix(".png"), page.with_suffix(".netlog.json")
    done = subprocess.run(
        [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--enable-unsafe-swiftshader",
            "--virtual-time-budget=20000",
            f"--window-size={size[0]},{size[1]}",
            f"--screenshot={shot}",
            f"--log-net-log={log}",
            *_OFFLINE,
            "--dump-dom",
            page.as_uri() + hash_,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert shot.exists(), f"chromium wrote no screenshot: {done.stderr[-2000:]}"
    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("RGB")).astype(np.int64)
    return done.stdout, pixels, page_requests(log)


def page_requests(log: Path) -> list[str]:
    """URLs of the network requests a page started (the browser's own carry no origin)."""
    data = json.loads(log.read_text(encoding="utf-8"))
    start = data["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    found = []
    for event in data["events"]:
        params = event.get("params") or {}
        browser_own = params.get("initiator") == "not an origin"
        if event["type"] == start and "url" in params and not browser_own:
            found.append(params["url"])
    return found


def _state(dom: str) -> dict[str, str]:
    head = dom.partition("<head>")[0]
    return {k: html.unescape(v) for k, v in re.findall(r'data-segio-([a-z]+)="([^"]*)"', head)}


def _opaque(segmentation: Segmentation) -> Segmentation:
    for segment in segmentation.segments.values():
        segment.properties.pop("opacity", None)
    return segmentation


def _hits(pixels: NDArray[np.int64], color: tuple[float, float, float]) -> int:
    expected = np.array([round(255 * c) for c in color])
    return int(np.all(np.abs(pixels.reshape(-1, 3) - expected) <= 2, axis=1).sum())


def test_page_draws_every_segment_offline_and_hiding_one_loses_its_colour(
    tmp_path: Path,
) -> None:
    scene = _opaque(surface_segmentation(5))
    page = tmp_path / "atlas.html"
    segio.write(scene, page)
    dom, pixels, requests = open_page(page, "#flat")
    state = _state(dom)
    assert state.get("state") == "ready", f"the page did not draw: {dom[-1500:]}"
    assert state["meshes"] == "5"
    assert json.loads(state["resources"]) == []  # nothing fetched, not even data:/blob:
    assert requests == []
    counts = {s.id: _hits(pixels, s.color) for s in scene.segments.values()}
    assert all(n > 30 for n in counts.values()), counts
    assert np.all(pixels[0, 0] == 0), "the background is black in #flat"

    (tmp_path / "hidden").mkdir()
    hidden = tmp_path / "hidden" / "atlas.html"
    shutil.copy2(page, hidden)
    dom, pixels, requests = open_page(hidden, "#flat&hide=Segment_2")
    assert _state(dom)["meshes"] == "4" and requests == []
    after = {s.id: _hits(pixels, s.color) for s in scene.segments.values()}
    assert after["Segment_2"] == 0, "the hidden segment's colour is still drawn"
    for segment_id, count in after.items():
        if segment_id != "Segment_2":
            assert count >= 0.9 * counts[segment_id], (segment_id, count, counts[segment_id])


def test_the_request_check_sees_a_page_that_fetches(tmp_path: Path) -> None:
    """A page with an image and a fetch from the web is caught (the check is not blind)."""
    page = tmp_path / "leak.html"
    page.write_text(
        '<!doctype html><title>leak</title><img src="http://example.invalid/x.png">'
        '<script>fetch("https://example.invalid/y").catch(() => {})</script>',
        encoding="utf-8",
    )
    _, _, requests = open_page(page)
    assert set(requests) == {"http://example.invalid/x.png", "https://example.invalid/y"}


HOSTILE = [
    "</script><script>document.documentElement.dataset.segioState='pwned'</script>",
    '<img src=x onerror="document.title=1">',
    'Tom & Jerry\'s "kidney" @CSP@ \u2028 \u00e9',
]


def test_names_cannot_break_out_of_the_page(tmp_path: Path) -> None:
    scene = surface_segmentation(3)
    for segment, name in zip(scene.segments.values(), HOSTILE, strict=True):
        segment.name = name
    page = tmp_path / "hostile.html"
    segio.write(scene, page, title=HOSTILE[0])
    text = page.read_text(encoding="utf-8")
    assert text.count("</script") == 4  # the page's own four script elements
    assert text.count("<img") == 0
    dom, _, requests = open_page(page)
    assert _state(dom).get("state") == "ready", dom[-1500:]
    names = re.findall(r'<span class="name">(.*?)</span>', dom)
    assert [html.unescape(n) for n in names] == HOSTILE
    assert html.unescape(dom.partition("<title>")[2].partition("</title>")[0]) == HOSTILE[0]
    assert requests == []


def test_terminology_folders_and_hover_text(tmp_path: Path) -> None:
    scene = small_segmentation("oblique", n_segments=5)
    kinds = [s for s in scene.segments.values() if s.terminology is not None]
    page = tmp_path / "tree.html"
    segio.write(scene, page)
    dom, _, _ = open_page(page)
    assert _state(dom).get("state") == "ready", dom[-1500:]
    summaries = [html.unescape(s) for s in re.findall(r"<summary>.*?<span> (.*?) </span>", dom)]
    parts = parts_of(scene.representation(Representation.CLOSED_SURFACE))
    expected_folders = {name for path in folder_paths(parts) for name in path}
    assert set(summaries) == expected_folders and "Anatomical Structure" in summaries
    titles = [html.unescape(t) for t in re.findall(r'<div class="row[^"]*" title="([^"]*)"', dom)]
    by_name = {title.partition("\n")[0]: title for title in titles}  # rows in folder order
    assert len(titles) == len(by_name) == len(scene.segments) == len(kinds)
    for segment in scene.segments.values():
        assert segment.terminology is not None
        title = by_name[segment.name]
        assert f"\ncategory: {segment.terminology.category.meaning} (SCT " in title
        assert f"\ntype: {segment.terminology.type.meaning} (SCT " in title

    flat_list = tmp_path / "flat.html"
    segio.write(scene, flat_list, folders=False)
    dom, _, _ = open_page(flat_list)
    shown = dom.partition('id="segio-metadata"')[0]  # the page before its scripts
    assert "<details" not in shown and shown.count('class="row') == len(scene.segments)


def test_folders_group_a_shared_type_only() -> None:
    """Left and right kidney share "Kidney"; a type of one segment gets no folder of its own."""
    parts = parts_of(surface_segmentation(24))
    paths = {part.name: path for part, path in zip(parts, folder_paths(parts), strict=True)}
    assert paths["kidney_left"] == ["Anatomical Structure", "Kidney"]
    assert paths["kidney_right"] == ["Anatomical Structure", "Kidney"]
    assert paths["liver"] == ["Anatomical Structure"]
    assert paths["kidney_left_mass"] == ["Morphologically Altered Structure"]


def _embedded(page: Path) -> tuple[dict[str, Any], bytes]:
    text = page.read_text(encoding="utf-8")

    def block(name: str) -> str:
        return text.partition(f'id="segio-{name}">')[2].partition("</script>")[0]

    return json.loads(block("metadata")), gzip.decompress(base64.b64decode(block("meshes")))


def decode(metadata: dict[str, Any], data: bytes) -> dict[str, tuple[NDArray[Any], NDArray[Any]]]:
    """The page's decoding (viewer.js), in numpy: segment id -> (LSA mm vertices, faces)."""
    at = 0

    def planes(count: int, width: int) -> NDArray[np.int64]:
        nonlocal at
        out = np.zeros(count, np.int64)
        for k in range(width):
            out |= np.frombuffer(data, np.uint8, count, at).astype(np.int64) << (8 * k)
            at += count
        return out

    found = {}
    for segment in metadata["segments"]:
        if not segment["triangles"]:
            continue
        n, m = segment["vertices"], 3 * segment["triangles"]
        codes = np.cumsum(planes(3 * n, 2).reshape(n, 3), axis=0) % 65536
        vertices = np.asarray(segment["origin"]) + codes * segment["step"]
        zigzag = planes(m, 4)
        faces = np.cumsum((zigzag >> 1) ^ -(zigzag & 1)).reshape(-1, 3)
        found[segment["id"]] = (vertices, faces)
    assert at == len(data)
    return found


def test_embedded_meshes_are_the_surfaces_on_an_oblique_grid(tmp_path: Path) -> None:
    seg = small_segmentation("oblique", empty_segment=True)
    page = tmp_path / "oblique.html"
    segio.write(seg, page)
    surfaces = seg.representation(Representation.CLOSED_SURFACE).surfaces
    metadata, data = _embedded(page)
    meshes = decode(metadata, data)
    assert [s["id"] for s in metadata["segments"]] == list(seg.segments)
    assert metadata["three"] == THREE_VERSION
    for described in metadata["segments"]:
        surface = surfaces[described["id"]]
        if surface.is_empty:
            assert described["triangles"] == 0 and described["id"] not in meshes
            continue
        vertices, faces = meshes[described["id"]]
        lps = surface.vertices
        lsa = np.column_stack([lps[:, 0], lps[:, 2], -lps[:, 1]])  # X = L, Y = S, Z = -P
        assert np.abs(vertices - lsa).max() <= described["step"] * 0.51
        assert np.array_equal(faces, surface.faces)
    assert any(s["triangles"] == 0 for s in metadata["segments"])
    dom, _, _ = open_page(page, "#flat")
    assert _state(dom).get("state") == "ready", dom[-1500:]
    assert re.search(r'<div class="row empty"[^>]*>.*?disabled', dom)


def test_page_is_much_smaller_than_the_glb(tmp_path: Path) -> None:
    scene = surface_segmentation(6)
    segio.write(scene, tmp_path / "scene.glb")
    segio.write(scene, tmp_path / "scene.html")
    text = (tmp_path / "scene.html").read_text(encoding="utf-8")
    meshes = text.partition('id="segio-meshes">')[2].partition("</script>")[0]
    assert len(meshes) < 0.5 * (tmp_path / "scene.glb").stat().st_size


def test_the_vendored_bundle_is_the_pinned_three_js() -> None:
    bundle = (VENDOR / "three-viewer.min.js").read_text(encoding="utf-8")
    revision = THREE_VERSION.split(".")[1]
    assert f'="{revision}"' in bundle[:2000] and "Three.js Authors" in bundle[:200]
    assert "export{" in bundle.replace(" ", "") and "OrbitControls" in bundle
    assert (VENDOR / "LICENSE").read_text(encoding="utf-8").startswith("The MIT License")
    assert f'THREE = "{THREE_VERSION}"' in (VENDOR / "build.py").read_text(encoding="utf-8")


def test_same_segmentation_same_page(tmp_path: Path) -> None:
    """No time stamp in the page (gzip's included): a rebuilt atlas diffs clean."""
    scene = surface_segmentation(2)
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        segio.write(scene, tmp_path / folder / "atlas.html")
    assert (tmp_path / "a" / "atlas.html").read_bytes() == (tmp_path / "b/atlas.html").read_bytes()


def test_bad_option_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="folders must be true or false"):
        segio.write(surface_segmentation(1), tmp_path / "x.html", folders="maybe")
    assert not (tmp_path / "x.html").exists()
