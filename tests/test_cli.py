"""End to end through the `magpie` command, as the README describes it, with tiny-shapes."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import snapshot


ROOT = Path(__file__).resolve().parent.parent
# (no skip when the tiny model is missing: it ships in assets/, so its absence is a broken
# checkout, and these tests must fail on it)


def magpie(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.main", *args], cwd=ROOT, env=env or os.environ,
                          capture_output=True, text=True, timeout=600)


before: dict = {}


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    from magpie_demo.shapes import make_demo_folder

    base = tmp_path_factory.mktemp("cli")
    folder = base / "Pictures"
    items = make_demo_folder(folder, n_images=64, seed=3)
    before.update(snapshot(folder))
    lib = base / "lib"
    env = {**os.environ, "MAGPIE_DATA_DIR": str(base / "data"),
           "MAGPIE_CACHE_DIR": str(base / "cache")}
    # --no-ocr: these tests are about shapes and notes; reading text is covered by test_ocr.py
    out = magpie("index", str(folder), "--library", str(lib), "--model", "tiny-shapes",
                 "--no-ocr", env=env)
    assert out.returncode == 0, out.stderr
    return folder, lib, items, env, out.stdout


def results(stdout: str) -> list[tuple[float, str]]:
    rows = []
    for line in stdout.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3 and parts[0].isdigit():
            rows.append((float(parts[1]), parts[2].replace("  (below cutoff)", "")))
    return rows


def test_index_reports_what_it_did(indexed):
    _, _, items, _, stdout = indexed
    assert f"{len(items)} added" in stdout and "0 errors" in stdout


def test_blue_triangles_come_first(indexed):
    folder, lib, items, env, _ = indexed
    out = magpie("search", "a blue triangle", "--library", str(lib), "--kind", "image", "--all",
                 "-k", "10", env=env)
    assert out.returncode == 0, out.stderr
    labels = {str(i.path): (i.color, i.shape) for i in items}
    found = [labels[p] for _, p in results(out.stdout)]
    n_blue_triangles = sum(1 for i in items if (i.color, i.shape) == ("blue", "triangle"))
    assert n_blue_triangles >= 1
    assert found[:n_blue_triangles] == [("blue", "triangle")] * n_blue_triangles


def test_notes_are_found_by_their_words(indexed):
    _, lib, _, env, _ = indexed
    out = magpie("search", "hardware store", "--library", str(lib), env=env)
    assert out.returncode == 0, out.stderr
    top_score, top = results(out.stdout)[0]
    assert top.endswith("hardware store.md")
    assert "blue triangle sign" in out.stdout  # the matching chunk is the snippet


def test_second_run_embeds_nothing(indexed):
    folder, lib, _, env, _ = indexed
    out = magpie("index", str(folder), "--library", str(lib), "--quiet", env=env)
    assert out.returncode == 0, out.stderr
    assert "nothing to embed" in out.stdout


def test_status_and_errors(indexed, tmp_path):
    folder, lib, items, env, _ = indexed
    out = magpie("status", "--library", str(lib), "--errors", env=env)
    assert out.returncode == 0, out.stderr
    assert "tiny-shapes" in out.stdout and "errors    0" in out.stdout
    assert str(folder) in out.stdout


def test_search_by_image(indexed):
    folder, lib, items, env, _ = indexed
    query = next(i for i in items if i.color == "red" and i.shape == "circle")
    out = magpie("search", "--image", str(query.path), "--library", str(lib), "-k", "3",
                 "--all", env=env)
    assert out.returncode == 0, out.stderr
    labels = {str(i.path): (i.color, i.shape) for i in items}
    assert labels[results(out.stdout)[0][1]] == ("red", "circle")


def test_wrong_model_is_refused_with_both_names(indexed):
    _, lib, _, env, _ = indexed
    out = magpie("index", "--library", str(lib), "--model", "vit-b-32", env=env)
    assert out.returncode == 2
    assert "tiny-shapes" in out.stderr and "vit-b-32" in out.stderr
    assert "Traceback" not in out.stderr


def test_missing_weights_offline_is_a_clear_message(tmp_path):
    env = {**os.environ, "MAGPIE_DATA_DIR": str(tmp_path / "d"), "HF_HUB_OFFLINE": "1"}
    (tmp_path / "pics").mkdir()
    out = magpie("index", str(tmp_path / "pics"), "--library", str(tmp_path / "lib"),
                 "--model", "vit-b-32", env=env)
    assert out.returncode == 2
    assert "--weights" in out.stderr and "MAGPIE_WEIGHTS" in out.stderr
    assert "Traceback" not in out.stderr


def test_weights_with_wrong_sha256_are_refused(tmp_path):
    bogus = tmp_path / "open_clip_model.safetensors"
    bogus.write_bytes(b"not the real weights")
    env = {**os.environ, "MAGPIE_DATA_DIR": str(tmp_path / "d")}
    (tmp_path / "pics").mkdir()
    out = magpie("index", str(tmp_path / "pics"), "--library", str(tmp_path / "lib"),
                 "--model", "vit-b-32", "--weights", str(bogus), env=env)
    assert out.returncode == 2
    assert "sha256" in out.stderr and "Traceback" not in out.stderr


def test_bad_query_syntax_is_a_clear_message(indexed):
    _, lib, _, env, _ = indexed
    out = magpie("search", "red + + circle", "--library", str(lib), env=env)
    assert out.returncode == 2 and "missing a term" in out.stderr


def test_models_lists_both(indexed):
    out = magpie("models")
    assert "vit-b-32 (default)" in out.stdout and "tiny-shapes" in out.stdout


def test_models_shows_size_speed_and_quality_of_each_choice():
    from indexer.specs import SPECS

    out = magpie("models")
    assert out.returncode == 0, out.stderr
    blocks = {}
    for line in out.stdout.splitlines():
        if not line.startswith(" "):
            name = line.split()[0]
            blocks[name] = []
        else:
            blocks[name].append(line.strip())
    assert set(blocks) == set(SPECS)
    for name, spec in SPECS.items():
        lines = blocks[name]
        assert f"size     {spec.size_text()}" in lines
        assert f"speed    {spec.speed_text()}" in lines
        assert f"quality  {spec.quality_text()}" in lines
    assert any("images/s" in ln and "ms per query" in ln for ln in blocks["vit-l-14"])
    assert any("ImageNet zero-shot 74.4 %" in ln for ln in blocks["mobileclip-s2"])
    assert any("licence apple-amlr" in ln for ln in blocks["mobileclip-s2"])


def test_help_does_not_import_torch():
    code = ("import sys; from app.cli import build_parser; build_parser().format_help(); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.stdout.strip() == "False"


def test_search_draws_the_other_results_divider_where_the_page_splits(indexed):
    """The text output puts one divider line before the first result that does not stand
    out, none when all do, and "No strong matches" first when none does; --json says which
    side each line is on."""
    import json

    _, lib, _, env, _ = indexed
    out = magpie("search", "a red circle", "--library", str(lib), "--all", "-k", "20", env=env)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    dividers = [i for i, ln in enumerate(lines) if ln.startswith("── ")]
    assert len(dividers) == 1 and "Other results" in lines[dividers[0]]
    standing = int(out.stderr.split("(", 1)[1].split()[0])  # "(N stand out of M ..."
    ranks_above = [ln for ln in lines[: dividers[0]] if ln.split(None, 1)[0].isdigit()]
    assert len(ranks_above) == standing >= 1
    plain = magpie("search", "a red circle", "--library", str(lib), "-k", "20", env=env)
    assert "── " not in plain.stdout  # only the standouts: nothing to divide
    rows = [json.loads(ln) for ln in magpie("search", "a red circle", "--library", str(lib),
                                            "--all", "-k", "20", "--json", env=env).stdout
            .splitlines()]
    assert [r["section"] for r in rows] == ["standout"] * standing + ["other"] * (
        len(rows) - standing)
    assert all(r["standout"] == (r["section"] == "standout") for r in rows)
    none = magpie("search", "qwzx florp blarg", "--library", str(lib), env=env)
    assert none.returncode == 0, none.stderr
    first = none.stdout.splitlines()[0]
    assert first.startswith("── No strong matches")
    assert sum(ln.startswith("── ") for ln in none.stdout.splitlines()) == 1
    assert len(results(none.stdout)) == 10  # the closest items, below the divider


def test_zz_user_files_untouched_after_every_command(indexed):
    """Runs last in this module: index, search, status, then remove the root."""
    folder, lib, _, env, _ = indexed
    out = magpie("remove", str(folder), "--library", str(lib), env=env)
    assert out.returncode == 0 and "not touched" in out.stdout
    out = magpie("status", "--library", str(lib), env=env)
    assert "items     0 images, 0 notes" in out.stdout
    assert snapshot(folder) == before and len(before) > 64


def test_reader_closing_the_pipe_is_not_an_error(indexed):
    """`magpie search … | head -1`: the reader leaves early; no "internal error", no traceback."""
    _, lib, _, env, _ = indexed
    proc = subprocess.Popen([sys.executable, "-m", "app.main", "search", "circle", "--library",
                             str(lib), "-k", "60"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # gone before the first line is written (the process is still starting)
    _, err = proc.communicate(timeout=600)
    assert "internal error" not in err and "Traceback" not in err, err
    assert proc.returncode in (0, 141), (proc.returncode, err)
