"""The gates around the suite: lint and type checks run before the tests, with a rule set that
catches real bugs, and installs use the versions the suite passed with (constraints.txt)."""
from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parent.parent

# open_clip internals are copied by the trimmed text tower (indexer/model.py) and the ONNX
# export (indexer/text_runtime.py); their tests only vouch for the versions they ran with.
MUST_PIN = ("open-clip-torch", "torch", "onnxruntime")


def _commands(script: str) -> list[str]:
    """The script's command lines, comments and blank lines dropped."""
    lines = (ROOT / script).read_text().splitlines()
    return [ln.split(" #")[0].strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def _constraints() -> dict[str, SpecifierSet]:
    out = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            req = Requirement(line)
            out[re.sub(r"[-_.]+", "-", req.name).lower()] = req.specifier
    return out


def test_test_sh_runs_lint_and_types_before_the_tests():
    cmds = _commands("scripts/test.sh")
    order = [next(i for i, c in enumerate(cmds) if c.startswith(prefix))
             for prefix in (".venv/bin/lint-imports", ".venv/bin/ruff check .",
                            ".venv/bin/mypy", "exec .venv/bin/python -m pytest")]
    assert order == sorted(order), cmds


def test_ruff_rule_set_catches_real_bugs(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import os\n\n\n"
        "def callbacks(items):\n"
        "    out = []\n"
        "    for item in items:\n"
        "        out.append(lambda: item)\n"
        "    return out\n"
    )
    run = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--config",
                          str(ROOT / "pyproject.toml"), "--output-format", "concise", str(bad)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "F401" in run.stdout and "B023" in run.stdout, run.stdout


def test_mypy_config_checks_the_bodies_of_untyped_functions(tmp_path):
    """check_untyped_defs: a wrong call inside an unannotated function is still an error."""
    snippet = tmp_path / "snippet.py"
    snippet.write_text("def f():\n    return len(3)\n")
    run = subprocess.run([sys.executable, "-m", "mypy", "--config-file",
                          str(ROOT / "pyproject.toml"), "--no-incremental", str(snippet)],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 1 and 'Argument 1 to "len"' in run.stdout, run.stdout + run.stderr


def test_constraints_pin_the_versions_whose_internals_magpie_copies():
    pins = _constraints()
    for name in MUST_PIN:
        spec = pins.get(name)
        assert spec is not None and len(spec) == 1 and next(iter(spec)).operator == "==", name
    assert "magpie" not in pins  # the project itself is never pinned
    assert not any("/" in str(s) for s in pins.values())  # no local paths


def test_setup_installs_with_the_constraints():
    installs = [c for c in _commands("scripts/setup.sh") if "pip install" in c and " -e " in c]
    assert installs and all("-c constraints.txt" in c for c in installs), installs
    # the install is redone when the constraints change, not only pyproject.toml
    assert any("constraints.txt" in c and "sha256sum" in c for c in _commands("scripts/setup.sh"))


@pytest.mark.parametrize("name", MUST_PIN)
def test_this_environment_runs_the_pinned_versions(name):
    """The suite vouches for what it ran with: a drifted venv fails here, by name."""
    assert _constraints()[name].contains(version(name), prereleases=True), (
        f"{name} {version(name)} is installed but constraints.txt pins {_constraints()[name]}; "
        "run scripts/setup.sh, or regenerate constraints.txt after a full test run")
