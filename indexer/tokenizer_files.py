"""A model's tokenizer files, fetched at the spec's pinned revision and checked on every load.

Models with their own Hugging Face tokenizer (`ModelSpec.tokenizer`) need a few small files from
the model's repository besides the weights. They are downloaded at the same pinned commit as
the weights (a commit id fixes a file's content on the Hub), into Magpie's cache. No public
record of their sha256 was found, so none is pinned in the build: instead the sha256 of each
file is computed when it is first downloaded, written to a record beside the files, and every
later load checks the files against that record (the library also keeps it: indexer/library.py),
so a file that changes afterwards is never used silently.

No torch here: the light text runtime reads these files too.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

from .specs import ModelSpec
from .weights import (WeightsMismatch, WeightsUnavailable, _remove_quietly, _short,
                      is_pinned_revision, sha256_file)

log = logging.getLogger(__name__)

RECORD = "files.sha256.json"


class TokenizerUnavailable(WeightsUnavailable):
    """The tokenizer files are missing and can't be downloaded (offline, no server, turned off).
    A WeightsUnavailable: the same "Download" answer fetches them."""

    def __init__(self, spec: ModelSpec, reason: str, *, endpoint: str | None = None,
                 folder: Path | None = None):
        self.spec = spec
        self.reason = reason
        names = spec.tokenizer.files if spec.tokenizer else ()
        base = (endpoint or "https://huggingface.co").rstrip("/")
        lines = [f"The tokenizer of the model {spec.name} ({spec.arch}) is not available: {reason}",
                 "", f"Magpie needs these files from {spec.hf_repo} at revision {spec.revision}:"]
        lines += [f"  {base}/{spec.hf_repo}/resolve/{spec.revision}/{n}" for n in names]
        if folder is not None:
            lines.append(f"Connect to the internet and try again, or put them in {folder}.")
        Exception.__init__(self, "\n".join(lines))


class TokenizerChanged(WeightsMismatch):
    """A tokenizer file is not the one recorded when it was first downloaded."""

    def __init__(self, spec: ModelSpec, path: Path | str, expected: str, actual: str, *,
                 note: str = ""):
        self.spec, self.path, self.expected, self.actual = spec, path, expected, actual
        Exception.__init__(self, "\n".join([
            f"The tokenizer file {path} of the model {spec.name} is not the one recorded when "
            "it was downloaded.",
            f"  recorded sha256: {expected}",
            f"  actual sha256:   {actual}",
            note or "Magpie will not use it."]))


def tokenizer_dir(spec: ModelSpec, cache_dir: Path) -> Path:
    """<cache>/models/<name>/<sha256>/tokenizer-<revision>/ (beside the weights they go with)."""
    return Path(cache_dir) / "models" / spec.name / spec.sha256 / f"tokenizer-{spec.revision}"


def read_record(folder: Path) -> dict[str, str] | None:
    """{file name: sha256} recorded at the first download, or None (none, or damaged)."""
    try:
        data = json.loads((folder / RECORD).read_text("utf-8"))
        files = data["files"]
        if isinstance(files, dict) and all(isinstance(v, str) for v in files.values()):
            return dict(files)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def check_files(spec: ModelSpec, folder: Path, recorded: dict[str, str]) -> dict[str, str]:
    """Each tokenizer file's sha256, checked against `recorded`; TokenizerChanged if one
    differs, TokenizerUnavailable if one is missing."""
    assert spec.tokenizer is not None
    for name in spec.tokenizer.files:
        path = folder / name
        want = recorded.get(name)
        if want is None or not path.is_file():
            raise TokenizerUnavailable(spec, f"{name} is missing from {folder}.", folder=folder)
        actual = sha256_file(path)  # 16 MB: hashed on every load, no marker trusted
        if actual != want:
            raise TokenizerChanged(spec, path, want, actual)
    return {n: recorded[n] for n in spec.tokenizer.files}


def verified_tokenizer_dir(spec: ModelSpec, cache_dir: Path) -> tuple[Path, dict[str, str]]:
    """The folder of already-downloaded tokenizer files and their checked sha256s (no download:
    the light text runtime and the model loader call this on every load)."""
    folder = tokenizer_dir(spec, cache_dir)
    recorded = read_record(folder)
    if recorded is None:
        raise TokenizerUnavailable(spec, "its files have not been downloaded yet.", folder=folder)
    return folder, check_files(spec, folder, recorded)


def resolve_tokenizer(spec: ModelSpec, *, cache_dir: Path, allow_download: bool = True,
                      endpoint: str | None = None) -> tuple[Path, dict[str, str]]:
    """The checked tokenizer folder for `spec`, downloading its files at the pinned revision
    when they are not in the cache yet (or a cached copy was damaged)."""
    if spec.tokenizer is None:
        raise ValueError(f"{spec.name} uses open_clip's built-in tokenizer")
    cache_dir = Path(cache_dir).expanduser()
    folder = tokenizer_dir(spec, cache_dir)
    if read_record(folder) is not None:
        try:
            return verified_tokenizer_dir(spec, cache_dir)
        except (TokenizerChanged, TokenizerUnavailable) as e:
            if not allow_download:
                raise
            log.warning("tokenizer files of %s are damaged (%s); downloading them again",
                        spec.name, str(e).splitlines()[0])
            _remove_quietly(folder)
    if not allow_download:
        raise TokenizerUnavailable(spec, "they are not downloaded yet and downloading is "
                                   "turned off.", endpoint=endpoint, folder=folder)
    return _download(spec, cache_dir, folder, endpoint)


def _download(spec: ModelSpec, cache_dir: Path, folder: Path,
              endpoint: str | None) -> tuple[Path, dict[str, str]]:
    assert spec.tokenizer is not None
    if not spec.hf_repo or not is_pinned_revision(spec.revision):
        raise TokenizerUnavailable(spec, "this build records no pinned revision to fetch them "
                                   "from.", endpoint=endpoint, folder=folder)
    try:
        import huggingface_hub
        from huggingface_hub.utils import OfflineModeIsEnabled
    except ImportError as e:  # pragma: no cover - a broken install
        raise TokenizerUnavailable(spec, f"the download library is missing ({e}).") from None
    endpoint = endpoint.rstrip("/") if endpoint else None
    staging = Path(cache_dir) / "models" / spec.name / "download-tokenizer"
    partial = folder.with_name(folder.name + f".{os.getpid()}.partial")
    _remove_quietly(partial)
    partial.mkdir(parents=True, exist_ok=True)
    try:
        record: dict[str, str] = {}
        for name in spec.tokenizer.files:
            try:
                got = huggingface_hub.hf_hub_download(
                    repo_id=spec.hf_repo, filename=name, revision=spec.revision,
                    cache_dir=str(staging), endpoint=endpoint, token=False)
            except OfflineModeIsEnabled:
                raise TokenizerUnavailable(spec, "downloads are turned off (HF_HUB_OFFLINE is "
                                           "set).", endpoint=endpoint, folder=folder) from None
            except Exception as e:
                raise TokenizerUnavailable(spec, f"downloading {name} failed ({_short(e)}).",
                                           endpoint=endpoint, folder=folder) from None
            shutil.copyfile(os.path.realpath(got), partial / name)
            record[name] = sha256_file(partial / name)
        (partial / RECORD).write_text(json.dumps(
            {"repo": spec.hf_repo, "revision": spec.revision, "files": record}, indent=1), "utf-8")
        _remove_quietly(folder)
        os.replace(partial, folder)  # the whole folder appears at once, record included
    finally:
        _remove_quietly(partial)
        _remove_quietly(staging)
    log.info("downloaded the %s tokenizer at revision %s", spec.name, spec.revision)
    return folder, record
