"""The terminal is safe (issue 10, item 5): names, snippets and error reasons from the disk are
printed with their control characters escaped, and --json gives scripts one object per line."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import note, solid

from app.terminal import terminal_safe
from indexer.specs import TINY_SHAPES

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(
    not TINY_SHAPES.bundled_path().exists(), reason="tiny model weights not built yet"
)

FORGED = "  1    0.999  passwords-of-yours"  # no "/": a name cannot hold one
CLEAR = "\x1b[2J\x1b[H"
BIDI = "\u202e"  # RIGHT-TO-LEFT OVERRIDE: "gpj.exe" shows as "exe.jpg"
DANGEROUS = ("\x1b", "\r", "\x07", "\x9b", BIDI, "\u2066", "\u2028")


def magpie(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.main", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_terminal_safe_escapes_every_control_and_keeps_the_rest():
    assert terminal_safe(f"a{CLEAR}b") == "a\\x1b[2J\\x1b[Hb"
    assert terminal_safe("x\ny\rz\tw") == "x\\ny\\rz\\tw"
    assert terminal_safe(f"{BIDI}gpj.exe") == "\\u202egpj.exe"
    assert terminal_safe("\x9b31m \x7f \u2028") == "\\x9b31m \\x7f \\u2028"
    assert terminal_safe("café 😀 日本 résumé.jpg") == "café 😀 日本 résumé.jpg"
    assert terminal_safe("one\ntwo\x1b", keep_newlines=True) == "one\ntwo\\x1b"
    assert terminal_safe(os.fsdecode(b"bad\xffname")) == "bad\\udcffname"


@pytest.fixture(scope="module")
def crafted(tmp_path_factory):
    base = tmp_path_factory.mktemp("term")
    folder = base / f"Pics{CLEAR}"
    names = [f"clear{CLEAR}screen.png", f"forge\n{FORGED}.png", "over\rwrite.png",
             f"{BIDI}gpj.png", "bell\x07.png", "plain red.png"]
    for i, name in enumerate(names):
        solid(folder / name, (200 + i, 20, 20))
    note(folder / f"note{CLEAR}.md", f"a red box\n{CLEAR}\x1b]0;pwned\x07 with red paint\r")
    (folder / f"broken{CLEAR}\n{FORGED}.jpg").write_bytes(b"not a jpeg at all")
    env = {**os.environ, "MAGPIE_DATA_DIR": str(base / "data"),
           "MAGPIE_CACHE_DIR": str(base / "cache"), "HF_HUB_OFFLINE": "1"}
    lib = base / "lib"
    out = magpie("index", str(folder), "--library", str(lib), "--model", "tiny-shapes",
                 "--quiet", env=env)
    assert out.returncode == 0, out.stderr
    files = {os.fsdecode(os.path.join(folder, n)) for n in os.listdir(folder)}
    return folder, lib, env, files, out


def _assert_safe(text: str) -> None:
    for ch in DANGEROUS:
        assert ch not in text, repr(ch)
    assert "\n" + FORGED.strip() not in "\n" + "\n".join(ln.strip() for ln in text.splitlines())


def test_index_summary_names_no_raw_control(crafted):
    *_, out = crafted
    _assert_safe(out.stdout + out.stderr)
    assert "1 error" in out.stdout and "1 file or folder could not be read" in out.stdout


def test_search_escapes_names_and_snippets(crafted):
    _folder, lib, env, files, _ = crafted
    out = magpie("search", "red", "--all", "-k", "50", "--library", str(lib), env=env)
    assert out.returncode == 0, out.stderr
    _assert_safe(out.stdout + out.stderr)
    assert "clear\\x1b[2J\\x1b[Hscreen.png" in out.stdout
    assert f"forge\\n{FORGED}.png" in out.stdout  # the forged line stays inside its own line
    assert "\\u202egpj.png" in out.stdout and "over\\rwrite.png" in out.stdout
    assert "\\x1b]0;pwned\\x07" in out.stdout  # the note's snippet
    ranked = [ln for ln in out.stdout.splitlines() if ln[:3].strip().isdigit()]
    assert len(ranked) == len(files) - 1  # every indexed file exactly once, one line each


def test_status_errors_escapes_the_failed_name(crafted):
    folder, lib, env, _files, _ = crafted
    out = magpie("status", "--errors", "--library", str(lib), env=env)
    assert out.returncode == 0, out.stderr
    _assert_safe(out.stdout)
    errors = [ln for ln in out.stdout.splitlines() if ln.startswith("error     ")]
    assert len(errors) == 1 and f"broken\\x1b[2J\\x1b[H\\n{FORGED}.jpg" in errors[0]
    assert terminal_safe(str(folder)) in out.stdout  # the root line


def test_search_json_is_one_object_per_line_with_exact_paths(crafted):
    _folder, lib, env, files, _ = crafted
    out = magpie("search", "red", "--all", "-k", "50", "--json", "--library", str(lib), env=env)
    assert out.returncode == 0, out.stderr
    assert all(ch not in out.stdout for ch in DANGEROUS)
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert {r["path"] for r in rows} == files - {p for p in files if "broken" in p}
    assert [r["rank"] for r in rows] == list(range(1, len(rows) + 1))
    keys = {"rank", "path", "kind", "score", "z", "relevance", "standout", "section", "keyword", "copies",
            "copy_paths", "taken_at", "snippet", "in_text", "text_marks"}
    assert all(set(r) == keys for r in rows)
    assert {r["kind"] for r in rows} == {"image", "note"}
    (n,) = [r for r in rows if r["kind"] == "note"]
    assert CLEAR in n["snippet"]  # exact text for scripts; json escaped it on the wire


def test_status_json_lines(crafted):
    folder, lib, env, _files, _ = crafted
    out = magpie("status", "--errors", "--json", "--library", str(lib), env=env)
    assert out.returncode == 0, out.stderr
    assert all(ch not in out.stdout for ch in DANGEROUS)
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert rows[0]["type"] == "library" and rows[0]["model"] == "tiny-shapes"
    assert rows[0]["images"] == 6 and rows[0]["notes"] == 1 and rows[0]["errors"] == 1
    assert [r for r in rows if r["type"] == "root"] == [
        {"type": "root", "path": str(folder), "items": 7}]
    (err,) = [r for r in rows if r["type"] == "error"]
    assert err["path"] == str(folder / f"broken{CLEAR}\n{FORGED}.jpg") and err["reason"]


def test_json_format_is_documented_in_help():
    env = dict(os.environ)
    for cmd, fields in [("search", ("rank", "path", "standout", "snippet")),
                        ("status", ('"type": "library"', '"type": "root"', '"type": "error"'))]:
        out = magpie(cmd, "--help", env=env)
        assert out.returncode == 0 and "JSON Lines" in out.stdout
        assert all(f in out.stdout for f in fields), out.stdout
