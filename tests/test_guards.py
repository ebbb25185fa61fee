"""The suite's own guards: what must fail does fail, and skips happen only for a named reason.

Each check runs a few real tests in a child pytest with one thing broken (through a small
plugin), and reads the outcome: a broken model loader fails the end-to-end ranking tests (it
used to turn into a skip), and with MAGPIE_REQUIRE_MILVUS=1 a missing Milvus install fails the
Milvus tests (two of them used to skip anyway).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

BREAK_LOADER = '''
import indexer.model

def load_encoder(*args, **kwargs):
    raise RuntimeError("the loader is broken (on purpose, by test_guards)")

indexer.model.load_encoder = load_encoder
'''

HIDE_MILVUS = '''
import sys

class HideMilvus:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("pymilvus", "milvus_lite"):
            raise ImportError(f"No module named {name!r} (hidden by test_guards)")
        return None

for name in [m for m in sys.modules if m.split(".")[0] in ("pymilvus", "milvus_lite")]:
    del sys.modules[name]
sys.meta_path.insert(0, HideMilvus())
'''


def outcomes(tmp_path: Path, plugin: str, args: list[str], **env: str) -> dict[str, int]:
    """Run pytest on `args` with `plugin` loaded first; {"passed": n, "failed": n, ...}."""
    (tmp_path / "guard_plugin.py").write_text(plugin)
    run_env = {**os.environ, **env,
               "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT),
                                              os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "guard_plugin", "-p", "no:cacheprovider", "-q",
         "-o", "addopts=", *args],
        cwd=ROOT, env=run_env, capture_output=True, text=True, timeout=900, check=False,
    )
    summary = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else out.stderr
    counts = {word.rstrip("s") if word == "errors" else word: int(n)
              for n, word in re.findall(r"(\d+) (passed|failed|skipped|errors?|deselected)",
                                        summary)}
    counts["_summary"] = summary  # type: ignore[assignment]
    return counts


def test_a_broken_model_loader_fails_the_ranking_tests(tmp_path):
    got = outcomes(tmp_path, BREAK_LOADER,
                   ["tests/test_gui.py", "-k", "typing_a_query_shows_the_matching_thumbnails"])
    assert got.get("skipped", 0) == 0, got["_summary"]
    assert got.get("error", 0) + got.get("failed", 0) == 1, got["_summary"]


MILVUS_TESTS = ["tests/test_store_contract.py", "-k",
                "moved_file_is_found_under_its_new_folder and milvus "
                "or cli_with_the_tiny_model_on_milvus"]


def test_without_milvus_the_milvus_tests_skip_unless_required(tmp_path):
    skipped = outcomes(tmp_path, HIDE_MILVUS, MILVUS_TESTS, MAGPIE_REQUIRE_MILVUS="0")
    assert skipped.get("skipped") == 2 and skipped.get("passed", 0) == 0, skipped["_summary"]
    required = outcomes(tmp_path, HIDE_MILVUS, MILVUS_TESTS, MAGPIE_REQUIRE_MILVUS="1")
    assert required.get("skipped", 0) == 0, required["_summary"]
    assert required.get("error", 0) + required.get("failed", 0) == 2, required["_summary"]
