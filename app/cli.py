"""The `magpie` command line: the same core as the window, for headless use and for tests.

Every failure a person can cause (no weights, wrong model, bad path, library in use) ends
with one clear line on stderr and exit status 2, never a traceback.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

EXIT_USAGE = 2


class UserError(Exception):
    """Message for the user, printed without a traceback."""


def _date(text: str) -> float:
    try:
        return dt.datetime.strptime(text, "%Y-%m-%d").timestamp()
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="magpie", description="Find any picture or note on your disk by describing it."
    )
    p.add_argument("--version", action="version", version="magpie 0.1.0")
    sub = p.add_subparsers(dest="command")

    def lib(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--library", metavar="DIR", help="library directory (default: app data)")

    def model(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--model", metavar="NAME", help="pinned model (see `magpie models`)")
        sp.add_argument("--weights", metavar="FILE",
                        help="local weights file (checked against the pinned sha256)")
        sp.add_argument("--offline", action="store_true", help="never download weights")

    g = sub.add_parser("gui", help="open the window (the default)")
    lib(g)

    ix = sub.add_parser("index", help="index folders (incremental)")
    ix.add_argument("paths", nargs="*", metavar="PATH", help="folders; none = rescan all roots")
    lib(ix)
    model(ix)
    ix.add_argument("--workers", type=int, help="decode processes (default: automatic)")
    ix.add_argument("--batch-size", type=int, help="images per model batch (default: automatic)")
    ix.add_argument("--quiet", action="store_true", help="no progress bar")
    ix.add_argument("--no-ocr", action="store_true",
                    help="do not read the words in pictures (the setting `ocr` does the same)")
    ix.add_argument("--vector-store", metavar="URL",
                    help="only when creating a library: hnsw (default) or "
                    "milvus://HOST:PORT/COLLECTION")

    se = sub.add_parser("search", help="search by text and/or image")
    se.add_argument("query", nargs="?", help='text, or arithmetic like "beach:2 + sunset - people"')
    se.add_argument("--image", metavar="FILE", help="search by an image")
    se.add_argument("-k", type=int, default=20, help="number of results (default 20)")
    se.add_argument("--mode", choices=["hybrid", "vector", "keyword"], default="hybrid")
    se.add_argument("--in", dest="folders", action="append", metavar="FOLDER",
                    help="only under this folder (repeatable)")
    se.add_argument("--kind", choices=["image", "note"], help="only images or only notes")
    se.add_argument("--after", type=_date, metavar="YYYY-MM-DD")
    se.add_argument("--before", type=_date, metavar="YYYY-MM-DD")
    se.add_argument("--sort", choices=["relevance", "date"], default="relevance")
    se.add_argument("--json", action="store_true", help="machine-readable output")
    se.add_argument("--all", action="store_true",
                    help="show all k results, not only those that stand out")
    se.add_argument("--explain", action="store_true", help="say what each score means")
    lib(se)
    model(se)

    st = sub.add_parser("status", help="counts, model, errors")
    st.add_argument("--errors", action="store_true", help="list every file that failed")
    lib(st)

    sub.add_parser("models", help="list the pinned models")

    rm = sub.add_parser("remove", help="stop indexing a folder (your files are not touched)")
    rm.add_argument("path")
    lib(rm)

    dl = sub.add_parser("download", help="fetch the pinned weights into the app cache")
    dl.add_argument("--model", default=None)

    mg = sub.add_parser("migrate", help="re-embed the library with another pinned model")
    mg.add_argument("--model", required=True, metavar="NAME")
    mg.add_argument("--weights", metavar="FILE")
    mg.add_argument("--offline", action="store_true")
    mg.add_argument("--quiet", action="store_true")
    lib(mg)

    de = sub.add_parser("demo", help="make a sample folder and index it with the tiny model")
    de.add_argument("--images", type=int, default=96)
    lib(de)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    command = args.command or "gui"
    if command == "gui":
        from app.gui import run_gui

        return run_gui(getattr(args, "library", None))
    handler = {
        "index": cmd_index,
        "search": cmd_search,
        "status": cmd_status,
        "models": cmd_models,
        "remove": cmd_remove,
        "download": cmd_download,
        "demo": cmd_demo,
        "migrate": cmd_migrate,
    }[command]
    try:
        return handler(args) or 0
    except KeyboardInterrupt:
        print("interrupted; everything committed so far is kept", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - turned into a message below
        msg = user_message(exc)
        if msg is None:
            raise
        print(f"magpie: {msg}", file=sys.stderr)
        return EXIT_USAGE


def user_message(exc: BaseException) -> str | None:
    """The one-line message for errors a person can act on; None for real bugs."""
    from indexer.catalogue import LibraryTooNew
    from indexer.library import LibraryError
    from indexer.specs import UnknownModel

    known: tuple[type[BaseException], ...] = (
        UserError, LibraryError, LibraryTooNew, UnknownModel, NotADirectoryError, KeyError,
        ValueError,
    )
    try:
        from indexer.weights import WeightsMismatch, WeightsUnavailable

        known += (WeightsMismatch, WeightsUnavailable)
    except ImportError:
        pass
    from indexer.stores import StoreUnavailable
    from indexer.vectors import StoreMismatch

    known += (StoreUnavailable, StoreMismatch)
    if isinstance(exc, known):
        return str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    if _is_storage_full(exc):
        return (f"cannot write the library: the disk is full or the file is too large ({exc}); "
                "everything committed before this point is kept, free some space and run the "
                "same command again to continue")
    return None


def _is_storage_full(exc: BaseException) -> bool:
    import errno
    import sqlite3

    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc).lower()
        return "full" in text or "disk i/o" in text
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


# -- helpers ----------------------------------------------------------------------------------
def _library_path(args: argparse.Namespace) -> Path:
    from app.settings import Settings

    return Path(args.library).expanduser() if getattr(args, "library", None) else (
        Settings.load().library_path()
    )


def _open(args: argparse.Namespace, *, need_model: bool = True, readonly: bool = False):
    """(library, encoder) for a command; the encoder is loaded only when needed.

    readonly opens take no lock, so search and status work while another process indexes.
    """
    from app.wiring import choose_spec, load_model
    from indexer.library import Library

    path = _library_path(args)
    spec = choose_spec(path, getattr(args, "model", None))
    if readonly:
        library = Library.open(path, spec, readonly=True)
    else:
        library = Library.open(path, spec, store=getattr(args, "vector_store", None))
    if not need_model:
        return library, None
    try:
        encoder = load_model(
            spec, getattr(args, "weights", None), allow_download=not getattr(args, "offline", False)
        )
    except BaseException:
        library.close()
        raise
    return library, encoder


class _Bar:
    """tqdm progress for a job's Progress events."""

    def __init__(self, quiet: bool) -> None:
        from tqdm import tqdm

        self.bar = None if quiet else tqdm(total=0, unit="file", dynamic_ncols=True, leave=True)

    def __call__(self, p) -> None:
        bar = self.bar
        if bar is None:
            return
        if p.phase in ("embedding", "reading text"):
            if bar.total != p.total or getattr(self, "phase", None) != p.phase:
                self.phase = p.phase
                bar.reset(total=p.total)
                bar.set_description(p.phase)
            bar.n = p.done
            bar.set_postfix(errors=p.errors, refresh=False)
            bar.refresh()
        elif p.phase in ("scanning", "hashing"):
            bar.set_description(f"{p.phase} {p.done}")
            bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def cmd_index(args: argparse.Namespace) -> int:
    from app.settings import Settings
    from app.wiring import tuning_for
    from indexer.indexing import Indexer

    for p in args.paths:
        if not os.path.isdir(p):
            raise UserError(f"not a folder: {p}")
    library, encoder = _open(args)
    tune = tuning_for(encoder.device)
    on_progress = bar = _Bar(args.quiet)
    errors: list[str] = []

    try:
        indexer = Indexer(
            library,
            encoder,
            workers=args.workers if args.workers is not None else tune.workers,
            batch_size=args.batch_size or tune.batch_size,
            on_progress=on_progress,
            on_error=lambda e: errors.append(f"{e.path}: {e.reason}"),
            ocr=not args.no_ocr and Settings.load().ocr,
        )
        report = indexer.run(args.paths or None)
    finally:
        bar.close()
        library.close()
    print(report.summary())
    if errors:
        print(f"{len(errors)} files could not be indexed; see `magpie status --errors`")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from indexer.catalogue import FileFilter
    from indexer.query import parse_query
    from indexer.search import SearchRequest, Searcher

    if not args.query and not args.image:
        raise UserError("give a text query or --image FILE")
    if args.image and not os.path.isfile(args.image):
        raise UserError(f"no such image: {args.image}")
    if args.query:
        parse_query(args.query)  # syntax errors before the model loads
    req = SearchRequest(
        text=args.query or "",
        image=os.path.abspath(args.image) if args.image else None,
        k=args.k,
        mode=args.mode,
        sort=args.sort,
        flt=FileFilter(
            kinds=(("text",) if args.kind == "note" else ("image",)) if args.kind else None,
            folders=tuple(os.path.abspath(f) for f in args.folders) if args.folders else None,
            after=args.after,
            before=args.before,
        ),
    )
    library, encoder = _open(args, readonly=True)
    try:
        page = Searcher(library, encoder).run(req)
    finally:
        library.close()
    shown = page.results if args.all else page.results[: page.cutoff]
    if args.json:
        print(json.dumps({"cutoff": page.cutoff, "elapsed_ms": page.elapsed_ms,
                          "results": [r.__dict__ for r in page.results]}, default=str, indent=1))
        return 0
    if not shown:
        print("no results")
    for rank, r in enumerate(shown, 1):
        mark = "" if rank <= page.cutoff else "  (below cutoff)"
        print(f"{rank:>3}  {r.score:6.3f}  {r.path}{mark}")
        if r.snippet:
            print(f"            {' '.join(r.snippet.split())[:160]}")
        if args.explain:
            print("            " + r.explain().replace("\n", "\n            "))
    more = len(page.results) - len(shown)
    tail = f"; {more} more with --all" if more > 0 else ""
    print(f"({page.cutoff} stand out of {len(page.results)} in {page.elapsed_ms:.0f} ms{tail})",
          file=sys.stderr)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from indexer.library import LibraryInfo

    path = _library_path(args)
    if not (path / "magpie-library.json").exists():
        raise UserError(f"no library at {path} yet; run `magpie index FOLDER` first")
    info = LibraryInfo.read(path)
    library, _ = _open(args, need_model=False, readonly=True)
    try:
        cat = library.catalogue
        counts = cat.counts()
        print(f"library   {path}")
        print(f"model     {library.spec.label()}  [fingerprint {library.fingerprint}]")
        if info.migration:
            print(f"migration to {info.models.get(info.migration, {}).get('label')} in progress")
        print(f"items     {counts['images']} images, {counts['notes']} notes "
              f"({counts['chunks']} vectors, {library.vectors.count()} in index)")
        print(f"pending   {counts['pending']}")
        print(f"errors    {counts['errors']}")
        text = cat.ocr_counts()
        if text["images"]:
            seen = text["images"] - text["pending"]
            print(f"text      read {seen} of {text['images']} pictures "
                  f"({100 * seen // text['images']}%): words in {text['with_text']}, "
                  f"none in {text['without_text']}, {text['errors']} failed")
        counts_by_root = cat.root_counts()
        for rid, rpath in cat.roots():
            print(f"root      {rpath}  ({counts_by_root.get(rid, 0)} items)")
        if args.errors:
            for p, reason in cat.errors() + cat.ocr_errors():
                print(f"error     {p}: {reason}")
    finally:
        library.close()
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from indexer.specs import DEFAULT_SPEC, SPECS

    for name, spec in SPECS.items():
        default = " (default)" if name == DEFAULT_SPEC else ""
        where = "bundled" if spec.bundled else f"{spec.hf_repo}@{(spec.revision or '')[:10]}"
        print(f"{name}{default}\n    {spec.arch} / {spec.pretrained}, {spec.embed_dim}-d, "
              f"{spec.preprocess.image_size}px, sha256 {spec.sha256[:12]}…, {where}\n"
              f"    {spec.description}")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from indexer.indexing import Indexer

    library, _ = _open(args, need_model=False)
    try:
        n = Indexer(library, None).remove_root(args.path)  # type: ignore[arg-type]
    finally:
        library.close()
    print(f"removed {args.path} from the library ({n} vectors); your files were not touched")
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from app.settings import Settings
    from app.wiring import weights_path
    from indexer.specs import get_spec

    spec = get_spec(args.model or Settings.load().model)
    bar = tqdm(unit="B", unit_scale=True, desc=spec.name)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        path = weights_path(spec, progress=progress)
    finally:
        bar.close()
    print(f"{spec.name}: {path} (sha256 verified)")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from app.wiring import load_model, tuning_for
    from indexer.migrate import migrate
    from indexer.specs import get_spec

    path = _library_path(args)
    if not (path / "magpie-library.json").exists():
        raise UserError(f"no library at {path}")
    spec = get_spec(args.model)
    encoder = load_model(spec, args.weights, allow_download=not args.offline)
    tune = tuning_for(encoder.device)
    bar = _Bar(args.quiet)
    try:
        result = migrate(path, spec, encoder, workers=tune.workers, batch_size=tune.batch_size,
                         on_progress=bar)
    finally:
        bar.close()
    print(result.report.summary())
    if result.switched:
        print(f"library now uses {spec.label()}; the old index is kept in {result.old_folder}")
    else:
        print("migration not finished; run the same command again to resume "
              "(searches keep using the old model until it completes)")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from app.demo import build_demo

    library = Path(args.library).expanduser() if args.library else None
    folder, lib, report = build_demo(n_images=args.images, library=library)
    print(f"sample folder {folder}\nlibrary {lib}\n{report.summary()}")
    print(f'try: magpie search "a red circle" --library {lib}')
    return 0
