"""One error hierarchy: MagpieErrors become messages, anything else is a bug with its traceback
kept in a log file (issue 11, item 2), and the modules that share errors import no cycle."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from indexer.errors import MagpieError, user_message

ROOT = Path(__file__).resolve().parent.parent


def _cycles(graph) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph.modules):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on.add(start)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in graph.modules:
                    continue
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph.find_modules_directly_imported_by(w)))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        found.append(sorted(comp))
    return found


def test_no_import_cycles_anywhere():
    """Counts imports inside functions too: a lazy import still makes a cycle for a reader."""
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("app", "indexer", "ui")
    for a, b in [("app.cli", "app.qt_bridge"), ("app.qt_bridge", "app.gui"),
                 ("indexer.stores", "indexer.milvus_store")]:
        assert not (graph.find_shortest_chain(a, b) and graph.find_shortest_chain(b, a)), (a, b)
    assert _cycles(graph) == []


def test_every_user_facing_error_is_a_magpie_error():
    from app.cli import UserError
    from indexer.catalogue import LibraryTooNew
    from indexer.decode import DecodeError
    from indexer.errors import ConfigError, NotIndexed, StoreUnavailable
    from indexer.library import LibraryError, LibraryInUse, ModelMismatch
    from indexer.query import QueryError
    from indexer.specs import UnknownModel
    from indexer.stores import StoreUnavailable as reexported
    from indexer.vectors import StoreMismatch
    from indexer.weights import WeightsError, WeightsMismatch, WeightsUnavailable

    assert reexported is StoreUnavailable
    for cls in (UserError, LibraryTooNew, DecodeError, ConfigError, NotIndexed, StoreUnavailable,
                LibraryError, LibraryInUse, ModelMismatch, QueryError, UnknownModel,
                StoreMismatch, WeightsError, WeightsMismatch, WeightsUnavailable):
        assert issubclass(cls, MagpieError), cls
    assert str(NotIndexed("/x is not an indexed folder")) == "/x is not an indexed folder"


def test_only_magpie_errors_become_messages():
    import errno
    import sqlite3

    assert user_message(MagpieError("do this")) == "do this"
    assert user_message(ValueError("a bug")) is None
    assert user_message(KeyError("a bug")) is None
    assert "disk is full" in (user_message(OSError(errno.ENOSPC, "No space left")) or "")
    assert "catalogue is damaged" in (user_message(
        sqlite3.DatabaseError("database disk image is malformed")) or "")
    assert "busy" in (user_message(sqlite3.OperationalError("database is locked")) or "")
    assert user_message(sqlite3.OperationalError("no such column: x")) is None  # a bug
    assert user_message(sqlite3.IntegrityError("UNIQUE constraint failed")) is None


def test_the_gui_shows_a_magpie_errors_text_and_names_a_bug():
    from app.qt_bridge import describe
    from indexer.query import QueryError

    assert describe(QueryError("missing a term after '+'")) == "missing a term after '+'"
    assert describe(ValueError("oops")) == "ValueError: oops"


def _cli_with_bug(tmp_path: Path, exc: str, extra_env: dict | None = None):
    code = ("import sys, app.cli as c\n"
            f"def boom(args): raise {exc}\n"
            "c.cmd_models = boom\n"
            "sys.exit(c.main(['models']))\n")
    env = {**os.environ, "MAGPIE_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("MAGPIE_DEBUG", None)
    env.update(extra_env or {})
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("exc", ["ValueError('bad \\x1b[2J value')", "KeyError('k')",
                                 "ZeroDivisionError('z')"])
def test_a_bug_is_one_line_with_its_traceback_in_a_log_file(tmp_path, exc):
    out = _cli_with_bug(tmp_path, exc)
    assert out.returncode == 70, out.stderr
    assert "Traceback" not in out.stderr + out.stdout
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("magpie: internal error: ")
    assert "\x1b" not in out.stderr
    log = tmp_path / "cache" / "logs" / "internal-errors.log"
    assert str(log) in lines[0]
    text = log.read_text()
    assert "Traceback" in text and "in boom" in text


def test_magpie_debug_shows_the_traceback(tmp_path):
    out = _cli_with_bug(tmp_path, "ZeroDivisionError('z')", {"MAGPIE_DEBUG": "1"})
    assert out.returncode == 1 and "Traceback" in out.stderr and "in boom" in out.stderr


def test_a_magpie_error_is_a_message_with_exit_2(tmp_path):
    out = _cli_with_bug(tmp_path, "__import__('indexer.errors').errors.MagpieError('fix it')")
    assert out.returncode == 2 and out.stderr.strip() == "magpie: fix it"
    assert not (tmp_path / "cache" / "logs").exists()
