"""The `magpie` command line: the same core as the window, for headless use and for tests.

Every failure a person can cause (no weights, wrong model, bad path, library in use, a
damaged library) is a MagpieError and ends with one clear message on stderr and exit status 2.
Anything else is a bug: one line "internal error: … (details in LOGFILE)", exit status 70, the
traceback in a log file under the app's cache dir (MAGPIE_DEBUG=1 shows it on the terminal).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path

from app.terminal import terminal_safe
from indexer.errors import MagpieError, user_message

EXIT_USAGE = 2  # the user can fix it: the message says how
EXIT_INTERNAL = 70  # a bug (EX_SOFTWARE): the traceback is in the crash log

__all__ = ["main", "build_parser", "user_message", "UserError", "EXIT_USAGE", "EXIT_INTERNAL"]


class UserError(MagpieError):
    """A bad argument or path on the command line, printed without a traceback."""


MAX_K = 10_000

SEARCH_JSON_HELP = """\
--json prints one JSON object per line (JSON Lines), one per result, in rank order:
  rank (int), path (str), kind ("image" | "note"), score (float, cosine similarity),
  z (float, above a typical item of its kind), relevance (float 0-1, 0.5 the edge),
  standout (bool, above the cutoff), section ("standout" | "other": "other" lines are the
  ones the text output lists under its "Other results" / "No strong matches" divider),
  keyword (bool, matched by words), taken_at (float unix seconds | null),
  snippet (str | null, the matching passage of a note, or the line read in a picture),
  in_text (bool, the words were found in the text read in the picture),
  text_marks (list of boxes, each four [x, y] corners as fractions of the upright picture's
  width and height: where the words are; [] when not in_text).
Paths are exact: bytes that are not UTF-8 appear as \\udcXX escapes (Python's os.fsdecode).
The summary line goes to stderr. No results: no lines."""

STATUS_JSON_HELP = """\
--json prints one JSON object per line (JSON Lines); "type" says which:
  {"type": "library", "path", "model", "fingerprint", "migration" (str | null), "images",
   "notes", "vectors", "in_index", "pending", "errors"}   (first line, always)
  {"type": "text", "pictures", "read", "with_text", "without_text", "failed", "pending"}
                                                        (words read in pictures; if any)
  {"type": "root", "path", "items"}                     (one per indexed folder)
  {"type": "error", "path", "reason"}                   (with --errors, one per failure)"""


def _count(text: str) -> int:
    """-k: a whole number of results from 1 to MAX_K (a huge one would overflow SQLite)."""
    try:
        k = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= k <= MAX_K:
        raise argparse.ArgumentTypeError(f"must be from 1 to {MAX_K}, not {text}")
    return k


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 1 <= n <= 1_000_000:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, not {text}")
    return n


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

    def shared(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--catalogue", metavar="URL",
                        help="search a shared library: its postgresql:// catalogue (with "
                        "--vector-store); an empty --library folder remembers both")
        sp.add_argument("--vector-store", metavar="URL",
                        help="the shared library's milvus:// vector store (with --catalogue)")

    def model(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--model", metavar="NAME", help="pinned model (see `magpie models`)")
        sp.add_argument("--weights", metavar="FILE",
                        help="local weights file (checked against the pinned sha256)")
        sp.add_argument("--offline", action="store_true", help="never download weights")

    g = sub.add_parser("gui", help="open the window (the default)")
    lib(g)
    g.add_argument("--query", metavar="TEXT",
                   help="search for TEXT as soon as the window is ready")

    ix = sub.add_parser("index", help="index folders (incremental)")
    ix.add_argument("paths", nargs="*", metavar="PATH", help="folders; none = rescan all roots")
    lib(ix)
    model(ix)
    ix.add_argument("--workers", type=_positive, help="decode processes (default: automatic)")
    ix.add_argument("--batch-size", type=_positive,
                    help="images per model batch (default: automatic)")
    ix.add_argument("--quiet", action="store_true", help="no progress bar")
    ix.add_argument("--no-ocr", action="store_true",
                    help="do not read the words in pictures (the setting `ocr` does the same)")
    ix.add_argument("--vector-store", metavar="URL",
                    help="only when creating a library: hnsw (default) or "
                    "milvus://HOST:PORT/COLLECTION")
    ix.add_argument("--catalogue", metavar="URL",
                    help="only when creating a library: the embedded SQLite file (default) or "
                    "postgresql://USER@HOST:PORT/DB?schema=NAME, shared with searchers on "
                    "other machines (needs a milvus:// vector store; docs/scaling.md)")

    wa = sub.add_parser("watch", help="keep the library in step with its folders until Ctrl+C")
    lib(wa)
    model(wa)
    wa.add_argument("--quiet-seconds", type=float, default=1.0, metavar="S",
                    help="index a batch of changes once the folders have been quiet this long")
    wa.add_argument("--no-ocr", action="store_true",
                    help="do not read the words in pictures (the setting `ocr` does the same)")

    se = sub.add_parser("search", help="search by text and/or image", epilog=SEARCH_JSON_HELP,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    se.add_argument("query", nargs="?", help='text, or arithmetic like "beach:2 + sunset - people"')
    se.add_argument("--image", metavar="FILE", help="search by an image")
    se.add_argument("-k", type=_count, default=20,
                    help=f"number of results, 1 to {MAX_K} (default 20)")
    se.add_argument("--mode", choices=["hybrid", "vector", "keyword"], default="hybrid")
    se.add_argument("--in", dest="folders", action="append", metavar="FOLDER",
                    help="only under this folder (repeatable)")
    se.add_argument("--kind", choices=["image", "note"], help="only images or only notes")
    se.add_argument("--after", type=_date, metavar="YYYY-MM-DD")
    se.add_argument("--before", type=_date, metavar="YYYY-MM-DD")
    se.add_argument("--sort", choices=["relevance", "date"], default="relevance")
    se.add_argument("--json", action="store_true",
                    help="one JSON object per result line (format below)")
    se.add_argument("--all", action="store_true",
                    help="show all k results, not only those that stand out")
    se.add_argument("--explain", action="store_true", help="say what each score means")
    lib(se)
    model(se)
    shared(se)

    st = sub.add_parser("status", help="counts, model, errors", epilog=STATUS_JSON_HELP,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    st.add_argument("--errors", action="store_true", help="list every file that failed")
    st.add_argument("--json", action="store_true",
                    help="one JSON object per line (format below)")
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

    dk = sub.add_parser("install-desktop-entry",
                        help="add Magpie to the desktop's application menu (your XDG data dir)")
    dk.add_argument("--remove", action="store_true", help="take the entry and icon away again")

    de = sub.add_parser("demo", help="make a sample folder and index it with the tiny model")
    de.add_argument("--images", type=_positive, default=96)
    lib(de)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    command = args.command or "gui"
    if command == "gui":
        from app.warm_start import WarmStart

        library, query = getattr(args, "library", None), getattr(args, "query", None)
        # the model loads from now on, while Qt and the window's modules are imported
        warm = WarmStart(library, query=query).start()
        from app.gui import run_gui

        return run_gui(library, query, warm=warm)
    handler = {
        "index": cmd_index,
        "search": cmd_search,
        "status": cmd_status,
        "models": cmd_models,
        "remove": cmd_remove,
        "download": cmd_download,
        "demo": cmd_demo,
        "migrate": cmd_migrate,
        "watch": cmd_watch,
        "install-desktop-entry": cmd_install_desktop_entry,
    }[command]
    try:
        return handler(args) or 0
    except KeyboardInterrupt:
        print("interrupted; everything committed so far is kept", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return _reader_went_away()
    except Exception as exc:  # noqa: BLE001 - a message, or a bug reported with its log file
        return report_failure(exc)


def _reader_went_away() -> int:
    """`magpie search … | head`: the reader closed the pipe after the lines it wanted. Not an
    error of ours: stop quietly as other command-line tools do (128 + SIGPIPE), and point
    stdout at /dev/null so the interpreter's final flush doesn't raise again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return 141


def report_failure(exc: BaseException) -> int:
    """One line on stderr. A MagpieError (or a full disk) is the user's to fix: exit 2. Anything
    else is a bug: its traceback goes to a log file in the app's cache dir, exit 70."""
    msg = user_message(exc)
    if msg is not None:
        print(f"magpie: {terminal_safe(msg, keep_newlines=True)}", file=sys.stderr)
        return EXIT_USAGE
    if os.environ.get("MAGPIE_DEBUG"):
        raise exc
    from app.crashlog import write_crash_log

    where = write_crash_log(exc)
    print(f"magpie: internal error: {terminal_safe(f'{type(exc).__name__}: {exc}')} ({where}); "
          "please report it", file=sys.stderr)
    return EXIT_INTERNAL


# -- helpers ----------------------------------------------------------------------------------
def _library_path(args: argparse.Namespace) -> Path:
    from app.settings import Settings

    return Path(args.library).expanduser() if getattr(args, "library", None) else (
        Settings.load().library_path()
    )


def _check_weights_flag(spec, weights: str | None) -> None:
    if weights and spec.bundled:
        raise UserError(f"{spec.name} ships with Magpie and always uses its own weights; "
                        "--weights is only for the downloadable models (see `magpie models`)")


def _open(args: argparse.Namespace, *, need_model: bool = True, readonly: bool = False):
    """(library, encoder) for a command; the encoder is loaded only when needed.

    readonly opens take no lock, so search and status work while another process indexes.
    A library that does not exist yet is created only once the weights are known to be
    usable, so a failed first run leaves nothing behind.
    """
    from app.wiring import choose_spec, load_model, weights_path
    from indexer.library import POINTER, Library

    path = _library_path(args)
    spec = choose_spec(path, getattr(args, "model", None))
    weights = getattr(args, "weights", None)
    _check_weights_flag(spec, weights)
    allow_download = not getattr(args, "offline", False)
    if need_model and not readonly and not (path / POINTER).exists():
        weights_path(spec, weights, allow_download=allow_download)  # verified: remembered
    store = getattr(args, "vector_store", None)
    catalogue = getattr(args, "catalogue", None)
    if readonly:
        library = Library.open(path, spec, readonly=True, catalogue=catalogue, store=store)
    else:
        library = Library.open(path, spec, store=store, catalogue=catalogue)
    if not need_model:
        return library, None
    try:
        encoder = load_model(spec, weights, allow_download=allow_download)
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
            raise UserError(f"not a folder: {terminal_safe(p)}")
    library, encoder = _open(args)
    tune = tuning_for(encoder.device)
    on_progress = bar = _Bar(args.quiet)

    try:
        indexer = Indexer(
            library,
            encoder,
            workers=args.workers if args.workers is not None else tune.workers,
            batch_size=args.batch_size or tune.batch_size,
            on_progress=on_progress,
            ocr=not args.no_ocr and Settings.load().ocr,
        )
        report = indexer.run(args.paths or None)
    finally:
        bar.close()
        library.close()
    print(report.summary())
    if report.errors:
        print(f"{_plural(report.errors, 'file or folder', 'files or folders')} could not be "
              "read; `magpie status --errors` lists them")
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    """Headless following: catch up (resuming interrupted work), then index each batch of
    changes the file system reports, until Ctrl+C or SIGTERM."""
    import queue
    import signal
    import time

    from app.settings import Settings
    from app.wiring import tuning_for
    from indexer.indexing import Indexer
    from indexer.watch import FolderWatcher

    if args.quiet_seconds <= 0:
        raise UserError("--quiet-seconds must be more than 0")
    library, encoder = _open(args)
    tune = tuning_for(encoder.device)
    errors: list[str] = []
    stop = {"now": False}

    def on_term(_sig: int, _frame: object) -> None:
        stop["now"] = True

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        indexer = Indexer(library, encoder, workers=tune.workers, batch_size=tune.batch_size,
                          on_error=lambda e: errors.append(e.path),
                          ocr=not args.no_ocr and Settings.load().ocr)
        roots = [p for _rid, p in library.catalogue.roots()]
        if not roots:
            raise UserError("this library has no folders yet; add one with `magpie index FOLDER`")
        print(f"catching up: {indexer.run().summary()}", flush=True)
        batches: queue.Queue[list[str]] = queue.Queue()
        with FolderWatcher(roots, batches.put, ignore=[str(library.root)],
                           quiet_s=args.quiet_seconds) as watcher:
            missing = len(roots) - len(watcher.watching)
            gone = f" ({missing} not reachable now; watched when back)" if missing else ""
            print(f"watching {len(watcher.watching)} folder(s){gone}; Ctrl+C to stop", flush=True)
            try:
                while not stop["now"]:
                    try:
                        batch = batches.get(timeout=0.5)
                    except queue.Empty:
                        continue
                    report = indexer.update(batch)
                    print(f"{time.strftime('%H:%M:%S')}  {report.summary()}", flush=True)
            except KeyboardInterrupt:
                pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        library.close()
    print("stopped watching; everything indexed so far is kept"
          + (f" ({len(errors)} files could not be indexed; see `magpie status --errors`)"
             if errors else ""))
    return 0


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def cmd_search(args: argparse.Namespace) -> int:
    from indexer.catalogue import FileFilter
    from indexer.query import parse_query
    from indexer.search import SearchRequest, Searcher
    from indexer.search_split import divider_title

    if not args.query and not args.image:
        raise UserError("give a text query or --image FILE")
    if args.image and not os.path.isfile(args.image):
        raise UserError(f"no such image: {terminal_safe(args.image)}")
    if args.after is not None and args.before is not None and args.after >= args.before:
        raise UserError("--after must be an earlier date than --before (--after is inclusive, "
                        "--before exclusive)")
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
        searcher = Searcher(library, encoder)
        page = searcher.run(req)
        marks = searcher.text_marks([r.file_id for r in page.results if r.text_level >= 0],
                                    page.text_words) if args.json else {}
    finally:
        library.close()
    closest = 10  # what "no strong matches" still lists, below the divider
    shown = page.results if args.all else page.results[: page.cutoff or closest]
    divider = page.divider_at(len(shown))  # the split, as the window draws it
    if args.json:
        for rank, r in enumerate(shown, 1):
            _json_line(rank=rank, path=r.open_path, kind="note" if r.kind == "text" else "image",
                       score=round(float(r.score), 6), z=round(float(r.z), 4),
                       relevance=round(float(r.relevance), 4),
                       standout=rank <= page.cutoff,
                       section="standout" if rank <= page.cutoff else "other",
                       keyword=bool(r.keyword),
                       copies=r.copies, copy_paths=list(r.copy_paths), taken_at=r.taken_at,
                       snippet=r.snippet, in_text=r.text_level >= 0,
                       text_marks=marks.get(r.file_id, []))
        return 0
    if page.query_truncated:
        print("(the query is longer than the model reads; only its start was used)",
              file=sys.stderr)
    if not page.results:
        print("no results")
    for rank, r in enumerate(shown, 1):
        if divider is not None and rank == divider + 1:
            print(f"── {divider_title(page.cutoff)} ──")
        print(f"{rank:>3}  {r.relevance_pct:3d}  {terminal_safe(r.path)}"
              + (f"  ({r.copies} copies)" if r.copies > 1 else ""))
        if r.snippet:
            print(f"            {terminal_safe(' '.join(r.snippet.split())[:160])}")
        if args.explain:
            print("            " + r.explain().replace("\n", "\n            "))
    more = len(page.results) - len(shown)
    tail = f"; {more} more with --all" if more > 0 else ""
    held = page.library_counts
    lib_note = (f"; the library holds {held.get('images', 0)} pictures, {held.get('notes', 0)} "
                "notes" if held else "")
    print(f"({page.cutoff} stand out of {len(page.results)} in {page.elapsed_ms:.0f} ms"
          f"{tail}{lib_note}; relevance 0-100, 50 is the edge of standing out)", file=sys.stderr)
    return 0


def _json_line(**fields: object) -> None:
    """One JSON object on one line; ensure_ascii escapes every control character and every
    non-ASCII one, so a crafted name can neither break the line nor reach the terminal."""
    print(json.dumps(fields, ensure_ascii=True, separators=(", ", ": ")))


def cmd_status(args: argparse.Namespace) -> int:
    from indexer.library import POINTER, LibraryInfo

    path = _library_path(args)
    if not (path / POINTER).exists():
        raise UserError(f"no library at {path} yet; run `magpie index FOLDER` first")
    info = LibraryInfo.read(path)
    library, _ = _open(args, need_model=False, readonly=True)
    try:
        cat = library.catalogue
        counts = cat.counts()
        in_index = library.vectors.count()
        migration = info.models.get(info.migration, {}).get("label") if info.migration else None
        counts_by_root = cat.root_counts()
        roots = [(rpath, counts_by_root.get(rid, 0)) for rid, rpath in cat.roots()]
        ocr = hasattr(cat, "ocr_counts")  # a server catalogue keeps no words read in pictures
        errors = (cat.errors() + (cat.ocr_errors() if ocr else [])) if args.errors else []
        text = cat.ocr_counts() if ocr else {"images": 0}
    finally:
        library.close()
    if args.json:
        _json_line(type="library", path=str(path), model=library.spec.name,
                   fingerprint=library.fingerprint, migration=migration,
                   images=counts["images"], notes=counts["notes"], vectors=counts["chunks"],
                   in_index=in_index, pending=counts["pending"], errors=counts["errors"])
        if text["images"]:
            _json_line(type="text", pictures=text["images"],
                       read=text["images"] - text["pending"], with_text=text["with_text"],
                       without_text=text["without_text"], failed=text["errors"],
                       pending=text["pending"])
        for rpath, n in roots:
            _json_line(type="root", path=rpath, items=n)
        for p, reason in errors:
            _json_line(type="error", path=p, reason=reason)
        return 0
    print(f"library   {terminal_safe(path)}")
    print(f"model     {library.spec.label()}  [fingerprint {library.fingerprint}]")
    if migration:
        print(f"migration to {terminal_safe(migration)} in progress")
    print(f"items     {counts['images']} images, {counts['notes']} notes "
          f"({counts['chunks']} vectors, {in_index} in index)")
    print(f"pending   {counts['pending']}")
    print(f"errors    {counts['errors']}")
    if text["images"]:
        seen = text["images"] - text["pending"]
        print(f"text      read {seen} of {text['images']} pictures "
              f"({100 * seen // text['images']}%): words in {text['with_text']}, "
              f"none in {text['without_text']}, {text['errors']} failed")
    for rpath, n in roots:
        print(f"root      {terminal_safe(rpath)}  ({n} items)")
    for p, reason in errors:
        print(f"error     {terminal_safe(p)}: {terminal_safe(reason)}")
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from indexer.specs import DEFAULT_SPEC, SPECS

    for name, spec in SPECS.items():
        default = " (default)" if name == DEFAULT_SPEC else ""
        where = "bundled" if spec.bundled else f"{spec.hf_repo}@{(spec.revision or '')[:10]}"
        print(f"{name}{default}\n    {spec.arch} / {spec.pretrained}, {spec.embed_dim}-d, "
              f"{spec.preprocess.image_size}px, sha256 {spec.sha256[:12]}…, {where}\n"
              f"    size     {spec.size_text()}\n"
              f"    speed    {spec.speed_text()}\n"
              f"    quality  {spec.quality_text()}\n"
              f"    {spec.description}")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from indexer.indexing import Indexer

    library, _ = _open(args, need_model=False)
    try:
        n = Indexer(library, None).remove_root(args.path)  # type: ignore[arg-type]
    finally:
        library.close()
    print(f"removed {terminal_safe(args.path)} from the library ({n} vectors); "
          "your files were not touched")
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
    print(f"{spec.name}: {terminal_safe(path)} (sha256 verified)")
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from app.wiring import load_model, tuning_for
    from indexer.library import Library, check_writable
    from indexer.migrate import migrate
    from indexer.specs import get_spec

    path = _library_path(args)
    if not (path / "magpie-library.json").exists():
        raise UserError(f"no library at {path}")
    spec = get_spec(args.model)
    _check_weights_flag(spec, args.weights)
    with Library.open(path, readonly=True) as active:  # damage is named before the model loads
        active.catalogue.check_integrity()
    check_writable(path)
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
        print(f"library now uses {spec.label()}; the old index is kept in "
              f"{terminal_safe(result.old_folder)}")
    else:
        print("migration not finished; run the same command again to resume "
              "(searches keep using the old model until it completes)")
    return 0


def cmd_install_desktop_entry(args: argparse.Namespace) -> int:
    from app import desktop_entry

    if args.remove:
        removed = desktop_entry.uninstall()
        print("\n".join(f"removed {p}" for p in removed) or "no desktop entry was installed")
        return 0
    for path in desktop_entry.install():
        print(f"wrote {path}")
    print("Magpie is in the application menu (it may take a moment to appear)")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from app.demo import build_demo

    library = Path(args.library).expanduser() if args.library else None
    folder, lib, report = build_demo(n_images=args.images, library=library)
    print(f"sample folder {terminal_safe(folder)}\nlibrary {terminal_safe(lib)}\n"
          f"{report.summary()}")
    print(f'try: magpie search "a red circle" --library {terminal_safe(lib)}')
    return 0
