"""Magpie writes only in its own data and cache dirs (and a library the user chose): a whole
`magpie index` + `magpie search` in a fresh home leaves nothing else there, not even what the
libraries it uses write on their own (onnxruntime's device id and telemetry database)."""
from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from pathlib import Path

from indexer.own_dirs_only import QUIET_ENV

ROOT = Path(__file__).resolve().parent.parent


def _fresh_home_env(home: Path) -> dict[str, str]:
    """The environment of a user with an empty home and no XDG overrides: platformdirs then
    puts Magpie's data in ~/.local/share/magpie and its cache in ~/.cache/magpie, and any
    library that writes to "the user's cache" writes to ~/.cache too, where the test sees it."""
    # nor what Magpie itself sets (a test process that imported it has them): the child must
    # set them itself
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("XDG_", "MAGPIE_", "HF_XET_", "HF_HOME"))
           and k not in QUIET_ENV}
    env.update(HOME=str(home), HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    return env


def _everything_under(home: Path) -> set[str]:
    return {str(p.relative_to(home)) for p in home.rglob("*")}


def _outside_magpie(paths: set[str]) -> set[str]:
    own = (".local/share/magpie", ".cache/magpie")
    parents = {".local", ".local/share", ".cache"}  # made on the way to Magpie's own dirs
    return {p for p in paths
            if p not in parents and not any(p == d or p.startswith(d + "/") for d in own)}


def test_index_and_search_write_nothing_outside_magpies_dirs(tmp_path: Path) -> None:
    from magpie_demo.shapes import make_demo_folder

    pictures = tmp_path / "Pictures"  # the user's folder: outside home, only read
    make_demo_folder(pictures, n_images=8, seed=5)
    home = tmp_path / "home"
    home.mkdir()
    env = _fresh_home_env(home)

    def magpie(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "app.main", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=600)

    # OCR on: reading words in pictures runs onnxruntime (RapidOCR) in this process
    out = magpie("index", str(pictures), "--model", "tiny-shapes", "--quiet")
    assert out.returncode == 0, out.stderr
    assert "0 errors" in out.stdout
    out = magpie("search", "a red circle")
    assert out.returncode == 0, out.stderr

    written = _everything_under(home)
    assert ".cache/magpie" in written and ".local/share/magpie" in written  # the test saw them
    assert _outside_magpie(written) == set()

    # the window, offscreen: it opens the same (default) library, loads its model, searches
    gui = subprocess.run([sys.executable, "-c", GUI_START_AND_SEARCH], cwd=ROOT,
                         env={**env, "QT_QPA_PLATFORM": "offscreen"}, capture_output=True,
                         text=True, timeout=600)
    assert gui.returncode == 0, gui.stderr
    assert gui.stdout.strip() == "searched", gui.stdout
    assert _outside_magpie(_everything_under(home)) == set()


GUI_START_AND_SEARCH = """
import sys, time
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication
from app.gui import configure_app, make_window, window_settings

app = QApplication(sys.argv[:1])
configure_app(app)
window, ctl = make_window(None)
window.restore_state(window_settings())
window.show()
ctl.ask_quit = lambda what: True
ctl.start()

def wait(done, what):
    deadline = time.monotonic() + 300
    while not done():
        app.processEvents()
        time.sleep(0.02)
        if time.monotonic() > deadline:
            sys.exit("timed out waiting for " + what)

wait(lambda: ctl.searcher is not None, "the library and its model")
ctl.last_page = None
QTest.keyClicks(window.search, "a red circle")
wait(lambda: ctl.last_page is not None, "the search")
window.close()
ctl.shutdown()
print("searched")
"""


# -- the weights download ----------------------------------------------------------------------
class _XetHub(http.server.BaseHTTPRequestHandler):
    """Answers like the Hub for a file kept in Xet storage (the pinned CLIP weights are):
    huggingface_hub then hands the download to hf_xet, which writes its logs (and any chunk
    cache) where it is told, ~/.cache/huggingface/xet unless HF_XET_CACHE says otherwise. The
    token route answers 404, so the download fails here, after hf_xet has started."""

    def _answer(self, body: bool) -> None:
        if "/resolve/" not in self.path:
            self.send_error(404)
            return
        self.send_response(200)
        for key, value in (("ETag", f'"{SHA}"'), ("X-Linked-Etag", f'"{SHA}"'),
                           ("X-Linked-Size", "1000"), ("Content-Length", "1000"),
                           ("X-Repo-Commit", REV), ("X-Xet-Hash", "c" * 64),
                           ("X-Xet-Refresh-Route", "/api/xet-token")):
            self.send_header(key, value)
        self.end_headers()
        if body:
            self.wfile.write(b"\0" * 1000)

    def do_HEAD(self) -> None:  # noqa: N802
        self._answer(False)

    def do_GET(self) -> None:  # noqa: N802
        self._answer(True)

    def log_message(self, *args: object) -> None:
        pass


SHA, REV = "a" * 64, "b" * 40
DOWNLOAD = f"""
import dataclasses, sys
from pathlib import Path
from indexer.specs import VIT_B_32
from indexer.weights import WeightsUnavailable, resolve_weights
spec = dataclasses.replace(VIT_B_32, sha256={SHA!r}, revision={REV!r})
try:
    resolve_weights(spec, cache_dir=Path(sys.argv[1]), endpoint=sys.argv[2])
except WeightsUnavailable:
    pass
print("hf_xet" in sys.modules)
"""


def test_a_weights_download_writes_nothing_outside_magpies_cache(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = _fresh_home_env(home)
    env.pop("HF_HUB_OFFLINE")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _XetHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        out = subprocess.run(
            [sys.executable, "-c", DOWNLOAD, str(home / ".cache" / "magpie"),
             f"http://127.0.0.1:{server.server_address[1]}"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    finally:
        server.shutdown()
        server.server_close()
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"  # the Xet path ran: hf_xet was started
    assert _outside_magpie(_everything_under(home)) == set()
