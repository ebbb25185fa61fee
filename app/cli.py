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
    if isinstance(exc, known):
        return str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    return None


# -- helpers ----------------------------------------------------------------------------------
def _library_path(args: argparse.Namespace) -> Path:
    from app.settings import Settings

    return Path(args.library).expanduser() if getattr(args, "library", None) else (
        Settings.load().library_path()
    )


def _open(args: argparse.Namespace, *, need_model: bool = True):
    """(library, encoder) for a command; the encoder is loaded only when needed."""
    from app.wiring import choose_spec, load_model
    from indexer.library import Library

    path = _library_path(args)
    spec = choose_spec(path, getattr(args, "model", None))
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


def cmd_index(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from app.wiring import tuning_for
    from indexer.indexing import Indexer
    from indexer.jobs import Progress

    for p in args.paths:
        if not os.path.isdir(p):
            raise UserError(f"not a folder: {p}")
    library, encoder = _open(args)
    tune = tuning_for(encoder.device)
    bar = None if args.quiet else tqdm(total=0, unit="file", dynamic_ncols=True, leave=True)
    errors: list[str] = []

    def on_progress(p: Progress) -> None:
        if bar is None:
            return
        if p.phase == "embedding":
            if bar.total != p.total:
                bar.reset(total=p.total)
                bar.set_description("embedding")
            bar.n = p.done
            bar.set_postfix(errors=p.errors, refresh=False)
            bar.refresh()
        elif p.phase in ("scanning", "hashing"):
            bar.set_description(f"{p.phase} {p.done}")
            bar.refresh()

    try:
        indexer = Indexer(
            library,
            encoder,
            workers=args.workers if args.workers is not None else tune.workers,
            batch_size=args.batch_size or tune.batch_size,
            on_progress=on_progress,
            on_error=lambda e: errors.append(f"{e.path}: {e.reason}"),
        )
        report = indexer.run(args.paths or None)
    finally:
        if bar is not None:
            bar.close()
        library.close()
    print(report.summary())
    if errors:
        print(f"{len(errors)} files could not be indexed; see `magpie status --errors`")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    from indexer.catalogue import FileFilter
    from indexer.search import Searcher

    if not args.query and not args.image:
        raise UserError("give a text query or --image FILE")
    if args.image and not os.path.isfile(args.image):
        raise UserError(f"no such image: {args.image}")
    flt = FileFilter(
        kinds=(("text",) if args.kind == "note" else ("image",)) if args.kind else None,
        folders=tuple(os.path.abspath(f) for f in args.folders) if args.folders else None,
        after=args.after,
        before=args.before,
    )
    library, encoder = _open(args)
    try:
        searcher = Searcher(library, encoder)
        started = time.perf_counter()
        results = run_query(searcher, args.query, args.image, args.k, flt, args.mode)
        elapsed = time.perf_counter() - started
        if args.sort == "date":
            results.sort(key=lambda r: -(r.taken_at or 0))
    finally:
        library.close()
    if args.json:
        print(json.dumps([r.__dict__ for r in results], default=str, indent=1))
        return 0
    if not results:
        print("no results")
    for rank, r in enumerate(results, 1):
        print(f"{rank:>3}  {r.score:6.3f}  {r.path}")
        if r.snippet:
            print(f"            {r.snippet[:160]}")
    print(f"({len(results)} results in {elapsed * 1000:.0f} ms)", file=sys.stderr)
    return 0


def run_query(searcher, text: str | None, image: str | None, k: int, flt, mode: str):
    """Text, image, or both (their vectors averaged)."""
    import numpy as np

    vec = None
    if image:
        vec = searcher.image_vector(image)
        if text:
            tv = searcher.text_vector(text)
            vec = vec + tv
            vec = vec / np.linalg.norm(vec)
    return searcher.search(text, vector=vec, k=k, flt=flt, mode=mode if text else "vector")


def cmd_status(args: argparse.Namespace) -> int:
    from indexer.library import LibraryInfo

    path = _library_path(args)
    if not (path / "magpie-library.json").exists():
        raise UserError(f"no library at {path} yet; run `magpie index FOLDER` first")
    info = LibraryInfo.read(path)
    library, _ = _open(args, need_model=False)
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
        counts_by_root = cat.root_counts()
        for rid, rpath in cat.roots():
            print(f"root      {rpath}  ({counts_by_root.get(rid, 0)} items)")
        if args.errors:
            for p, reason in cat.errors():
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


def cmd_demo(args: argparse.Namespace) -> int:
    from app.demo import build_demo

    library = Path(args.library).expanduser() if args.library else None
    folder, lib, report = build_demo(n_images=args.images, library=library)
    print(f"sample folder {folder}\nlibrary {lib}\n{report.summary()}")
    print(f'try: magpie search "a red circle" --library {lib}')
    return 0
