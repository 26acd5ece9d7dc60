"""The HTML viewer page: opened from disk in headless Chromium with the network off.

* Every segment's exact colour is on the screenshot (``#flat``: unlit colours), and
  unticking one segment's box (``#hide=ID``) loses exactly that colour.
* No request leaves the page: Chromium's own net log (browser-initiated update checks
  excepted) has no request from the page, and the page fetched nothing but data:/blob:.
* The controls work as a user drives them (Chrome DevTools Protocol over a pipe): a folder's
  box, the opacity slider and "Show all" change exactly the colours they should, and the
  pointer over a surface shows that segment's terminology.
* Names cannot break out of the page; folders follow the terminology; the embedded
  meshes decode to the segments' surfaces (oblique grid, through the converters) and are
  much smaller than the GLB.

Chromium and three.js come from ``make tools``; without them these tests fail, not skip.
"""

from __future__ import annotations

import base64
import fcntl
import gzip
import html
import json
import os
import re
import shutil
import subprocess
import time
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


class Browser:
    """Headless Chromium driven through the DevTools protocol on fds 3 and 4
    (``--remote-debugging-pipe``: no port, nothing listening), one page attached."""

    def __init__(self, size: tuple[int, int] = (640, 480)) -> None:
        def high(fd: int) -> int:  # above 3 and 4, so that the child's dup2 cannot clash
            new = fcntl.fcntl(fd, fcntl.F_DUPFD, 10)
            os.close(fd)
            return new

        to_browser, ours_out = map(high, os.pipe())
        ours_in, from_browser = map(high, os.pipe())

        def child() -> None:
            os.dup2(to_browser, 3)
            os.dup2(from_browser, 4)

        self.process = subprocess.Popen(
            [
                _chromium(),
                "--headless",
                "--no-sandbox",
                "--enable-unsafe-swiftshader",
                "--remote-debugging-pipe",
                f"--window-size={size[0]},{size[1]}",
                *_OFFLINE,
                "about:blank",
            ],
            pass_fds=(3, 4),
            preexec_fn=child,  # the test process runs no other thread
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser)
        os.close(from_browser)
        self.output = os.fdopen(ours_out, "wb", buffering=0)
        self.input = os.fdopen(ours_in, "rb", buffering=0)
        self.pending = b""
        self.count = 0
        self.events: list[dict[str, Any]] = []
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        self.send("Network.enable", page=True)

    def send(self, method: str, page: bool = False, **params: Any) -> dict[str, Any]:
        self.count += 1
        message: dict[str, Any] = {"id": self.count, "method": method, "params": params}
        if page:
            message["sessionId"] = self.session
        self.output.write(json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self.pending:
                chunk = self.input.read(1 << 16)
                assert chunk, "chromium closed the DevTools pipe"
                self.pending += chunk
            text, _, self.pending = self.pending.partition(b"\0")
            answer = json.loads(text)
            if answer.get("id") == self.count:
                assert "error" not in answer, (method, answer["error"])
                result: dict[str, Any] = answer["result"]
                return result
            self.events.append(answer)

    def evaluate(self, expression: str) -> Any:
        found = self.send("Runtime.evaluate", page=True, expression=expression, returnByValue=True)
        return found["result"].get("value")

    def wait_for(self, expression: str, seconds: float = 60.0) -> Any:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"waited {seconds} s for {expression}")

    def screenshot(self) -> NDArray[np.int64]:
        import io

        from PIL import Image

        self.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        data = base64.b64decode(self.send("Page.captureScreenshot", page=True)["data"])
        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(image.convert("RGB")).astype(np.int64)

    def requested(self) -> list[str]:
        return [
            event["params"]["request"]["url"]
            for event in self.events
            if event.get("method") == "Network.requestWillBeSent"
        ]

    def close(self) -> None:
        self.output.write(json.dumps({"id": 0, "method": "Browser.close"}).encode() + b"\0")
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.output.close()
        self.input.close()


def test_the_controls_change_exactly_what_they_should(tmp_path: Path) -> None:
    scene = _opaque(surface_segmentation(5))
    segments = list(scene.segments.values())
    page = tmp_path / "controls.html"
    segio.write(scene, page)
    browser = Browser()
    try:
        browser.send("Page.navigate", page=True, url=page.as_uri() + "#flat")
        browser.wait_for("document.documentElement.dataset.segioState === 'ready'")
        pixels = browser.screenshot()
        before = [_hits(pixels, s.color) for s in segments]
        assert min(before) > 30, before

        # the pointer over segment 1 shows its name and terminology
        expected = np.array([round(255 * c) for c in segments[0].color])
        rows, columns = np.nonzero(np.all(np.abs(pixels - expected) <= 2, axis=2))
        pick = np.argmin((rows - rows.mean()) ** 2 + (columns - columns.mean()) ** 2)
        for kind in ("mouseMoved", "mouseMoved"):  # the second after a frame has passed
            browser.send(
                "Input.dispatchMouseEvent",
                page=True,
                type=kind,
                x=int(columns[pick]),
                y=int(rows[pick]),
            )
        tip = browser.wait_for("!document.getElementById('tip').hidden && tip.textContent")
        assert segments[0].terminology is not None
        assert tip.startswith(segments[0].name + "\n")
        assert f"type: {segments[0].terminology.type.meaning} (SCT" in tip
        browser.send("Input.dispatchMouseEvent", page=True, type="mouseMoved", x=1, y=1)
        browser.wait_for("document.getElementById('tip').hidden")  # it covered the view

        # segment 2's opacity slider to 0; the folder box of segment 4's category
        browser.evaluate(
            "const slider = document.querySelector('[data-segment=\"Segment_2\"]')"
            ".closest('.row').querySelector('input[type=range]');"
            "slider.value = '0'; slider.dispatchEvent(new Event('input'));"
            "for (const s of document.querySelectorAll('summary'))"
            "  if (s.textContent.includes('Morphologically')) s.querySelector('input').click();"
        )
        pixels = browser.screenshot()
        after = [_hits(pixels, s.color) for s in segments]
        assert after[1] == 0 and after[3] == 0, after
        for n in (0, 2, 4):
            assert after[n] >= 0.9 * before[n], (n, after, before)

        browser.evaluate("document.getElementById('show-all').click()")
        again = [_hits(browser.screenshot(), s.color) for s in segments]
        assert again[3] >= 0.9 * before[3] and again[1] == 0, again  # opacity stays 0
        requested = browser.requested()
    finally:
        browser.close()
    assert requested[0] == page.as_uri() + "#flat" or requested[0] == page.as_uri()
    assert all(url.startswith(("blob:", "data:")) for url in requested[1:]), requested


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
    segio.write(scene, tmp_path / "atlas.v2.html")  # the default title: the name less .html
    assert "<title>atlas.v2</title>" in (tmp_path / "atlas.v2.html").read_text(encoding="utf-8")


def test_bad_option_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="folders must be true or false"):
        segio.write(surface_segmentation(1), tmp_path / "x.html", folders="maybe")
    assert not (tmp_path / "x.html").exists()
