"""Finding, downloading and verifying the pinned model weights.

Every weights file Magpie loads must hash to the sha256 recorded in its ModelSpec: that hash is
part of the spec's fingerprint, so an unverified file could silently produce vectors that do not
match a library. Hashing 600 MB takes seconds, so the result of a verification is remembered in a
small marker (size + mtime + inode) under the app cache and reused while the file is unchanged.

Sources, in order: the file bundled with the app, a file the user named (`--weights FILE`, the
GUI's "Choose weights file…"), the `MAGPIE_WEIGHTS` environment variable, Magpie's own cache,
and finally a download of the pinned revision from the Hugging Face Hub into that cache.

No Qt here, and no torch: this module must stay cheap to import.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import stat
import threading
from collections.abc import Callable
from pathlib import Path

from .errors import MagpieError
from .own_dirs_only import keep_hub_downloads_in
from .specs import ModelSpec

log = logging.getLogger(__name__)

ENV_WEIGHTS = "MAGPIE_WEIGHTS"
CHUNK = 1 << 20  # 1 MiB
HF_WEB = "https://huggingface.co"

_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX40 = re.compile(r"[0-9a-f]{40}")

Progress = Callable[[int, int], None]


# ---------------------------------------------------------------------------------------------
# errors (messages are shown to people as they are: no tracebacks, say what to do)


class WeightsError(MagpieError):
    """Base class: the weights for a model can't be used. `str(err)` is a message for a person."""


class WeightsUnavailable(WeightsError):
    """No usable weights file: offline, not found, download failed, or not pinned in this build."""

    def __init__(self, spec: ModelSpec, reason: str, *, endpoint: str | None = None):
        self.spec = spec
        self.reason = reason
        super().__init__(_unavailable_message(spec, reason, endpoint))


class WeightsMismatch(WeightsError):
    """A file is not the pinned weights: its sha256 differs from the one recorded in the spec."""

    def __init__(
        self, spec: ModelSpec, path: Path | str, expected: str, actual: str, *, note: str = ""
    ):
        self.spec = spec
        self.path = path  # a file, or the download URL when the Hub reported the hash
        self.expected = expected
        self.actual = actual
        msg = (
            f"The weights file {path} is not the pinned model {spec.name} "
            f"({spec.arch} / {spec.pretrained}).\n"
            f"  expected sha256: {expected}\n"
            f"  actual sha256:   {actual}\n"
            "It is a different model or version, or an incomplete or damaged download."
        )
        if note:
            msg += f"\n{note}"
        super().__init__(msg)


def download_url(spec: ModelSpec, endpoint: str | None = None) -> str | None:
    """Direct link to the pinned file, for people who download it themselves."""
    if not spec.hf_repo:
        return None
    base = (endpoint or HF_WEB).rstrip("/")
    return f"{base}/{spec.hf_repo}/resolve/{spec.revision}/{spec.filename}"


def _unavailable_message(spec: ModelSpec, reason: str, endpoint: str | None) -> str:
    size = f"about {spec.size_mb:.0f} MB, " if spec.size_mb else ""
    lines = [
        f"The weights for the model {spec.name} ({spec.arch} / {spec.pretrained}) "
        f"are not available: {reason}",
        "",
        f"Magpie needs the file {spec.filename} ({size}sha256 {spec.sha256}).",
    ]
    if spec.hf_repo and is_pinned_revision(spec.revision):
        lines += [
            "Download it on any computer from the Hugging Face Hub:",
            f"  repository: {spec.hf_repo}",
            f"  file:       {spec.filename}",
            f"  revision:   {spec.revision}",
            f"  link:       {download_url(spec, endpoint)}",
        ]
    elif spec.hf_repo:
        lines += [
            f"This build records no pinned revision of {spec.hf_repo} to download from; "
            f"get {spec.filename} from that repository and check its sha256.",
        ]
    lines += [
        "Then tell Magpie where the file is, in one of these ways:",
        "  - on the command line:  --weights FILE",
        f"  - in the environment:   {ENV_WEIGHTS}=FILE",
        '  - in the app:           "Choose weights file…"',
    ]
    return "\n".join(lines)


def is_pinned_sha256(value: str | None) -> bool:
    return value is not None and _HEX64.fullmatch(value) is not None


def is_pinned_revision(value: str | None) -> bool:
    """Only full commit hashes are pins; a branch name like "main" can move under us."""
    return value is not None and _HEX40.fullmatch(value) is not None


# ---------------------------------------------------------------------------------------------
# hashing and the verification cache


def sha256_file(path: Path | str) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks so a 600 MB file never sits in memory."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _stat_key(path: Path) -> dict:
    st = path.stat()
    return {
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "ctime_ns": st.st_ctime_ns,
        "ino": st.st_ino,
    }


# Files verified by this process: lets load_encoder skip re-hashing what resolve_weights checked.
_verified_here: dict[str, tuple[dict, str]] = {}
_verified_lock = threading.Lock()


def _marker_path(cache_dir: Path, path: Path) -> Path:
    key = hashlib.sha256(str(path).encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return cache_dir / "models" / ".verified" / f"{key}.json"


def _known_sha256(path: Path, cache_dir: Path | None) -> str | None:
    """The file's sha256 if a remembered verification still matches its size/mtime/inode."""
    try:
        key = _stat_key(path)
    except OSError:
        return None
    with _verified_lock:
        hit = _verified_here.get(str(path))
    if hit and hit[0] == key:
        return hit[1]
    if cache_dir is not None:
        try:
            data = json.loads(_marker_path(cache_dir, path).read_text("utf-8"))
            if data.get("path") == str(path) and all(data.get(k) == v for k, v in key.items()):
                sha = data.get("sha256")
                if is_pinned_sha256(sha):
                    with _verified_lock:
                        _verified_here[str(path)] = (key, sha)
                    return sha
        except (OSError, ValueError, AttributeError):
            pass
    return None


def _remember(path: Path, key: dict, sha: str, cache_dir: Path | None) -> None:
    with _verified_lock:
        _verified_here[str(path)] = (key, sha)
    if cache_dir is None:
        return
    marker = _marker_path(cache_dir, path)
    try:
        marker.parent.mkdir(parents=True, exist_ok=True)
        tmp = marker.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"path": str(path), "sha256": sha, **key}), "utf-8")
        os.replace(tmp, marker)
    except OSError as e:  # a read-only cache only costs a re-hash next time
        log.debug("could not write verification marker %s: %s", marker, e)


def file_sha256_cached(path: Path | str, cache_dir: Path | None = None) -> str:
    """sha256 of `path`, from the verification cache when the file is unchanged."""
    p = Path(path).expanduser().resolve()
    sha = _known_sha256(p, cache_dir)
    if sha is not None:
        return sha
    key = _stat_key(p)
    sha = sha256_file(p)
    if _stat_key(p) == key:  # don't remember a hash of a file that changed while we read it
        _remember(p, key, sha, cache_dir)
    return sha


def verify_file(spec: ModelSpec, path: Path | str, *, cache_dir: Path | None = None) -> Path:
    """Return the resolved path if the file's sha256 is the spec's; raise WeightsMismatch if not."""
    _require_pinned_sha(spec)
    p = Path(path).expanduser().resolve()
    actual = file_sha256_cached(p, cache_dir)
    if actual != spec.sha256:
        raise WeightsMismatch(spec, p, spec.sha256, actual)
    return p


def is_verified(spec: ModelSpec, path: Path | str) -> bool:
    """True if this process already verified `path` against the spec and it hasn't changed since."""
    p = Path(path).expanduser().resolve()
    return is_pinned_sha256(spec.sha256) and _known_sha256(p, None) == spec.sha256


def _require_pinned_sha(spec: ModelSpec) -> None:
    if not is_pinned_sha256(spec.sha256):
        raise WeightsUnavailable(
            spec,
            f"this build records no sha256 for {spec.name} (found {spec.sha256!r}), so no file "
            "can be checked against it. This is a packaging bug; please report it.",
        )


# ---------------------------------------------------------------------------------------------
# resolving


def cache_path(spec: ModelSpec, cache_dir: Path) -> Path:
    """Where Magpie keeps its verified copy: <cache>/models/<name>/<sha256>/<filename>; a
    quantized variant's is its base model's (one checkpoint, downloaded once)."""
    return Path(cache_dir) / "models" / spec.weights_name / spec.sha256 / spec.filename


def _user_file(spec: ModelSpec, path: Path | str, source: str, cache_dir: Path) -> Path:
    p = Path(path).expanduser()
    kind = _not_a_file(p)
    if kind:
        raise WeightsUnavailable(spec, f"the weights file {source} {kind}: {p}")
    try:
        return verify_file(spec, p, cache_dir=cache_dir)
    except OSError as e:
        raise WeightsUnavailable(spec, f"the weights file {source} can't be read: {e}") from None


def _not_a_file(p: Path) -> str | None:
    """Why `p` cannot be a weights file, or None. Decided by stat alone: a FIFO or a device
    (/dev/zero) is never opened, so it can neither hang the app nor be hashed for ever."""
    try:
        mode = p.stat().st_mode
    except FileNotFoundError:
        return "does not exist"
    except OSError as e:
        return f"can't be read ({e.strerror or e})"
    if stat.S_ISREG(mode):
        return None
    what = ("a folder" if stat.S_ISDIR(mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
            else "a socket" if stat.S_ISSOCK(mode) else "not a regular file")
    return f"is {what}, not a weights file"


def resolve_weights(
    spec: ModelSpec,
    *,
    local_file: Path | None = None,
    cache_dir: Path,
    allow_download: bool = True,
    endpoint: str | None = None,
    progress: Progress | None = None,
) -> Path:
    """Return the path of a weights file verified against `spec.sha256` (see `_resolve_file`).
    A model with its own tokenizer needs its tokenizer files too: indexer/model_files.py."""
    return _resolve_file(spec, local_file=local_file, cache_dir=cache_dir,
                         allow_download=allow_download, endpoint=endpoint, progress=progress)


def _resolve_file(
    spec: ModelSpec,
    *,
    local_file: Path | None = None,
    cache_dir: Path,
    allow_download: bool = True,
    endpoint: str | None = None,
    progress: Progress | None = None,
) -> Path:
    """Return the path of a weights file verified against `spec.sha256`.

    Order: bundled with the app, `local_file`, $MAGPIE_WEIGHTS, Magpie's cache, download of the
    pinned revision (only if `allow_download`). A file the user named that is missing or wrong
    is an error rather than a reason to download 600 MB behind their back.

    `progress(done_bytes, total_bytes)` is called during a download (total 0 if unknown).
    `endpoint` overrides the Hub address (default: $HF_ENDPOINT, else huggingface.co).
    """
    _require_pinned_sha(spec)
    cache_dir = Path(cache_dir).expanduser()

    bundled = spec.bundled_path()
    if bundled is not None and bundled.is_file():
        return verify_file(spec, bundled, cache_dir=cache_dir)

    if local_file is not None and str(local_file) != "":
        return _user_file(spec, local_file, "you chose", cache_dir)

    env = os.environ.get(ENV_WEIGHTS, "").strip()
    if env:
        return _user_file(spec, env, f"named by {ENV_WEIGHTS}", cache_dir)

    cached = cache_path(spec, cache_dir)
    if cached.is_file():
        try:
            return verify_file(spec, cached, cache_dir=cache_dir)
        except WeightsMismatch:
            log.warning("removing damaged cached weights %s", cached)
            _remove_quietly(cached)

    if not allow_download:
        raise WeightsUnavailable(
            spec, "no weights file was given and downloading is turned off.", endpoint=endpoint
        )
    return _download(spec, cache_dir, endpoint=endpoint, progress=progress)


def _remove_quietly(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    except OSError as e:
        log.warning("could not remove %s: %s", path, e)


def _staging_dir(spec: ModelSpec, cache_dir: Path) -> Path:
    # huggingface_hub's own cache layout lives here only while a download is in flight
    return Path(cache_dir) / "models" / spec.weights_name / "download"


def _progress_tqdm(progress: Progress | None, fallback_total: int):
    """A silent tqdm class that forwards byte counts to `progress`.

    huggingface_hub reports progress only through a tqdm class. Xet downloads open two bars
    (bytes written, then network bytes); the first one opened is the one that reaches the file
    size, so only that one is forwarded.
    """
    from tqdm.auto import tqdm as _tqdm

    state: dict[str, object | None] = {"primary": None}

    class _Bar(_tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True
            kwargs.pop("name", None)
            super().__init__(*args, **kwargs)
            self._done = int(kwargs.get("initial") or 0)
            if state["primary"] is None:
                state["primary"] = self

        def update(self, n=1):
            self._done += int(n or 0)
            if progress is not None and state["primary"] is self:
                total = int(self.total or 0) or fallback_total
                try:
                    progress(self._done, total)
                except Exception:  # a broken progress display must not break the download
                    log.exception("progress callback failed")
            return None

    return _Bar


def _download(
    spec: ModelSpec,
    cache_dir: Path,
    *,
    endpoint: str | None,
    progress: Progress | None,
) -> Path:
    if not spec.hf_repo:
        raise WeightsUnavailable(spec, "this model can't be downloaded (it has no Hub repository).")
    if not is_pinned_revision(spec.revision):
        raise WeightsUnavailable(
            spec,
            f"this build records no pinned revision for {spec.name} (found {spec.revision!r}), "
            "so it will not download one. Supply a local weights file instead.",
        )
    keep_hub_downloads_in(cache_dir)  # before huggingface_hub can import hf_xet
    try:
        import huggingface_hub
        from huggingface_hub import constants as hf_constants
        from huggingface_hub.utils import HfHubHTTPError, OfflineModeIsEnabled
    except ImportError as e:  # pragma: no cover - a broken install
        raise WeightsUnavailable(spec, f"the download library is missing ({e}).") from None

    endpoint = endpoint.rstrip("/") if endpoint else None
    shown = endpoint or hf_constants.ENDPOINT

    def unavailable(reason: str) -> WeightsUnavailable:
        return WeightsUnavailable(spec, reason, endpoint=endpoint)

    # 1. Ask the Hub about the file first, once and without retries: huggingface_hub itself would
    #    retry an unreachable server for ~25 s before giving up, and the answer tells us the
    #    file's sha256 (its LFS ETag) so a wrong pin fails before 600 MB are downloaded.
    url = huggingface_hub.hf_hub_url(
        spec.hf_repo, spec.filename, revision=spec.revision, endpoint=endpoint
    )
    try:
        meta = huggingface_hub.get_hf_file_metadata(url, token=False, retry_on_errors=False)
    except OfflineModeIsEnabled:
        raise unavailable("downloads are turned off (HF_HUB_OFFLINE is set).") from None
    except HfHubHTTPError as e:
        status = getattr(getattr(e, "response", None), "status_code", "?")
        raise unavailable(
            f"the Hub at {shown} answered HTTP {status} for {spec.hf_repo} "
            f"revision {spec.revision}, file {spec.filename}."
        ) from None
    except Exception as e:  # connection refused, DNS, timeout, proxy, TLS…
        raise unavailable(f"could not reach {shown} ({_short(e)}). Are you offline?") from None

    etag = (meta.etag or "").lower()
    if _HEX64.fullmatch(etag) and etag != spec.sha256:
        raise WeightsMismatch(
            spec,
            url,
            spec.sha256,
            etag,
            note="The Hub reports this hash for the pinned revision; nothing was downloaded.",
        )

    # 2. Download the pinned revision into a staging area inside our cache dir, verify, then move
    #    the blob into its final place. The staging area is removed either way.
    staging = _staging_dir(spec, cache_dir)
    total_hint = int(meta.size or 0) or int(spec.size_mb * 1e6)
    try:
        got = huggingface_hub.hf_hub_download(
            repo_id=spec.hf_repo,
            filename=spec.filename,
            revision=spec.revision,
            cache_dir=str(staging),
            endpoint=endpoint,
            token=False,  # a public file: never send a user's token to a configured endpoint
            tqdm_class=_progress_tqdm(progress, total_hint),
        )
    except OfflineModeIsEnabled:
        _remove_quietly(staging)
        raise unavailable("downloads are turned off (HF_HUB_OFFLINE is set).") from None
    except Exception as e:
        _remove_quietly(staging)
        done = cache_path(spec, cache_dir)
        if done.is_file():  # another Magpie process finished the same download meanwhile
            try:
                return verify_file(spec, done, cache_dir=cache_dir)
            except (WeightsMismatch, OSError):
                pass
        if isinstance(e, OSError) and getattr(e, "errno", None) is not None:
            raise unavailable(f"the download could not be saved ({_short(e)}).") from None
        raise unavailable(f"the download from {shown} failed ({_short(e)}).") from None

    blob = Path(os.path.realpath(got))
    try:
        actual = sha256_file(blob)
    except OSError as e:
        _remove_quietly(staging)
        raise unavailable(f"the downloaded file could not be read ({_short(e)}).") from None
    if actual != spec.sha256:
        _remove_quietly(staging)
        raise WeightsMismatch(
            spec,
            url,
            spec.sha256,
            actual,
            note="The downloaded file was deleted from Magpie's cache.",
        )

    final = cache_path(spec, cache_dir)
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(blob, final)
    except OSError:  # staging on another volume (unusual): copy instead
        tmp = final.with_name(final.name + f".{os.getpid()}.partial")
        shutil.copyfile(blob, tmp)
        os.replace(tmp, final)
    _remove_quietly(staging)
    final = final.resolve()
    _remember(final, _stat_key(final), actual, cache_dir)
    return final


def _short(e: BaseException) -> str:
    """One line about an exception, including its root cause, for a person."""
    seen: list[str] = []
    cur: BaseException | None = e
    while cur is not None and len(seen) < 3:
        text = str(cur).strip().splitlines()[0] if str(cur).strip() else type(cur).__name__
        if text not in seen:
            seen.append(text)
        cur = cur.__cause__ or cur.__context__
    return " — ".join(seen[::-1][:2]) if len(seen) > 1 else seen[0]
