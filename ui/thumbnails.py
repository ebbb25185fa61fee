"""Thumbnails decoded on a thread pool, never on the UI thread, kept in an LRU cache.

`get(path, size)` answers at once: a cached pixmap, or None after queueing a decode. When the
decode finishes, `ready(path, size)` fires and the caller asks again. QImageReader decodes at
the reduced size directly (JPEG DCT scaling) and applies the EXIF orientation; QImage is safe
to build on any thread and becomes a QPixmap on the UI thread, where pixmaps must live.
Failures are cached too, so a broken file is tried once, not on every repaint.
"""
from __future__ import annotations

from collections import OrderedDict

from PySide6.QtCore import QObject, QSize, Qt, QThreadPool, Signal, Slot
from PySide6.QtGui import QImage, QImageReader, QPixmap

TEXT_PREVIEW_BYTES = 64 * 1024


def read_scaled(path: str, size: int) -> QImage:
    """Decode `path` so that it fits a size x size box (aspect kept). Null image on failure."""
    reader = QImageReader(path)
    reader.setAutoTransform(True)  # EXIF orientation
    reader.setDecideFormatFromContent(True)
    src = reader.size()
    if src.isValid() and (src.width() > size or src.height() > size):
        scaled = src.scaled(QSize(size, size), Qt.AspectRatioMode.KeepAspectRatio)
        # decode a little larger than needed when the format can't scale itself; then smooth
        reader.setScaledSize(QSize(max(1, scaled.width()), max(1, scaled.height())))
    img = reader.read()
    if img.isNull():
        img = _read_with_pillow(path, size)
    if not img.isNull() and (img.width() > size or img.height() > size):
        img = img.scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio,
                         Qt.TransformationMode.SmoothTransformation)
    return img


def _read_with_pillow(path: str, size: int) -> QImage:
    """Formats Qt lacks (HEIC with pillow-heif, odd TIFFs): a Pillow fallback, same thread."""
    try:
        from PIL import Image, ImageOps

        with Image.open(path) as im:
            im.draft("RGB", (size * 2, size * 2))
            im = ImageOps.exif_transpose(im)
            im.thumbnail((size, size))
            im = im.convert("RGBA")
            data = im.tobytes("raw", "RGBA")
            qimg = QImage(data, im.width, im.height, im.width * 4, QImage.Format.Format_RGBA8888)
            return qimg.copy()  # own the pixels; `data` dies with this frame
    except Exception:  # noqa: BLE001 - any failure just means "no thumbnail"
        return QImage()


def read_text(path: str, limit: int = TEXT_PREVIEW_BYTES) -> str:
    try:
        with open(path, "rb") as fh:
            raw = fh.read(limit + 1)
    except OSError as exc:
        return f"(cannot read this file: {exc.strerror or exc})"
    text = raw[:limit].decode("utf-8", "replace")
    return text + ("\n…" if len(raw) > limit else "")


class ThumbnailLoader(QObject):
    """Asynchronous, cached thumbnails (and note text for the preview pane)."""

    ready = Signal(str, int)  # path, size: ask get() again
    textReady = Signal(str, str)  # path, text
    _decoded = Signal(str, int, QImage)  # from pool threads to the UI thread
    _textDecoded = Signal(str, str)

    def __init__(self, parent: QObject | None = None, *, max_bytes: int = 96 << 20,
                 threads: int = 2) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(max(1, threads))
        self._cache: OrderedDict[tuple[str, int], QPixmap | None] = OrderedDict()
        self._bytes = 0
        self._max_bytes = max_bytes
        self._inflight: set[tuple[str, int]] = set()
        self.decoded_count = 0
        self._decoded.connect(self._on_decoded)
        self._textDecoded.connect(self.textReady)

    # -- public -----------------------------------------------------------------------------
    def get(self, path: str, size: int) -> QPixmap | None:
        """The cached thumbnail, or None (a decode is queued unless it failed before)."""
        key = (path, size)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        self.request(path, size)
        return None

    def failed(self, path: str, size: int) -> bool:
        key = (path, size)
        return key in self._cache and self._cache[key] is None

    def request(self, path: str, size: int) -> None:
        key = (path, size)
        if key in self._cache or key in self._inflight:
            return
        self._inflight.add(key)
        self._pool.start(lambda: self._work(path, size))

    def request_text(self, path: str) -> None:
        self._pool.start(lambda: self._textDecoded.emit(path, read_text(path)))

    def cancel_pending(self) -> None:
        """Drop queued decodes (results changed); running ones finish and are cached."""
        self._pool.clear()
        self._inflight.clear()

    def wait(self, msecs: int = 5000) -> bool:
        return self._pool.waitForDone(msecs)

    def clear(self) -> None:
        self.cancel_pending()
        self._cache.clear()
        self._bytes = 0

    @property
    def cached_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._cache)

    # -- internals ----------------------------------------------------------------------------
    def _work(self, path: str, size: int) -> None:
        img = read_scaled(path, size)
        try:
            self._decoded.emit(path, size, img)
        except RuntimeError:  # the loader was deleted while we decoded (window closed)
            pass

    @Slot(str, int, QImage)
    def _on_decoded(self, path: str, size: int, img: QImage) -> None:
        key = (path, size)
        self._inflight.discard(key)
        self.decoded_count += 1
        pm = None if img.isNull() else QPixmap.fromImage(img)
        old = self._cache.pop(key, None)
        if old is not None:
            self._bytes -= _cost(old)
        self._cache[key] = pm
        self._bytes += _cost(pm)
        while self._bytes > self._max_bytes and len(self._cache) > 1:
            _k, evicted = self._cache.popitem(last=False)
            self._bytes -= _cost(evicted)
        self.ready.emit(path, size)


def _cost(pm: QPixmap | None) -> int:
    return 0 if pm is None else pm.width() * pm.height() * 4
