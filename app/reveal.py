""""Show in folder": the file manager opens the file's folder with the file selected.

On Linux and other freedesktop systems that is the `org.freedesktop.FileManager1.ShowItems`
D-Bus call (Nautilus, Dolphin, Nemo, Caja, PCManFM-Qt, Thunar… implement it) with the file's
URI. It is sent asynchronously, so a slow or absent file manager never freezes the window;
when there is no session bus, or the call fails (no file manager offers the interface), the
folder is opened with QDesktopServices, which needs no xdg-open. macOS and Windows have their
own "reveal" commands.
"""
from __future__ import annotations

import logging
import os
import shutil
import sys
from collections.abc import Callable

from PySide6.QtCore import QObject, QProcess, QUrl, Signal
from PySide6.QtGui import QDesktopServices

log = logging.getLogger(__name__)

FM_SERVICE = "org.freedesktop.FileManager1"
FM_PATH = "/org/freedesktop/FileManager1"
FM_INTERFACE = "org.freedesktop.FileManager1"
CALL_TIMEOUT_MS = 5000


def open_folder(path: str, *, which: Callable[[str], str | None] = shutil.which,
                start: Callable[[str, list[str]], bool] = QProcess.startDetached) -> bool:
    """Open a file's folder (no selection) in the default file manager: QDesktopServices
    (which relies on xdg-open on most Linux desktops), else GLib's `gio open`, which finds
    the folder handler from the .desktop files itself."""
    folder = os.path.dirname(path)
    if QDesktopServices.openUrl(QUrl.fromLocalFile(folder)):
        return True
    gio = which("gio")
    return bool(gio) and bool(start(gio, ["open", folder]))


def file_uri(path: str) -> str:
    """file:// URI, percent-encoded, as FileManager1 expects."""
    return QUrl.fromLocalFile(path).toString(QUrl.ComponentFormattingOption.FullyEncoded)


def show_items_call(path: str):
    """The D-Bus method call `ShowItems(as uris, s startup_id)` for one file."""
    from PySide6.QtDBus import QDBusMessage

    msg = QDBusMessage.createMethodCall(FM_SERVICE, FM_PATH, FM_INTERFACE, "ShowItems")
    msg.setArguments([[file_uri(path)], ""])
    return msg


class Revealer(QObject):
    """Callable: `revealer(path)` asks the file manager to show `path` selected; True when the
    request went out (a D-Bus failure later falls back to opening the folder; if that fails
    too, `failed` says so)."""

    failed = Signal(str)  # the path that could not be shown at all

    def __init__(self, parent: QObject | None = None, *, bus=None,
                 open_folder: Callable[[str], bool] = open_folder,
                 platform: str = sys.platform) -> None:
        super().__init__(parent)
        self._bus = bus
        self._open_folder = open_folder
        self._platform = platform
        self._watchers: list = []
        self.fallbacks: list[str] = []  # paths whose folder was opened instead (tests read)

    def __call__(self, path: str) -> bool:
        if self._platform == "darwin":
            return QProcess.startDetached("open", ["-R", path])
        if self._platform.startswith("win"):
            return QProcess.startDetached("explorer", ["/select,", os.path.normpath(path)])
        try:
            bus = self.bus()
            if bus is not None and bus.isConnected():
                self._send(bus, path)
                return True
        except Exception as exc:  # noqa: BLE001 - any D-Bus trouble: open the folder instead
            log.info("ShowItems could not be sent: %s", exc)
        return self._fall_back(path)

    def bus(self):
        if self._bus is None:
            from PySide6.QtDBus import QDBusConnection

            self._bus = QDBusConnection.sessionBus()
        return self._bus

    def _send(self, bus, path: str) -> None:
        from PySide6.QtDBus import QDBusPendingCallWatcher

        watcher = QDBusPendingCallWatcher(bus.asyncCall(show_items_call(path), CALL_TIMEOUT_MS),
                                          self)
        self._watchers.append(watcher)
        watcher.finished.connect(lambda w, p=path: self._answered(w, p))

    def _answered(self, watcher, path: str) -> None:
        # not deleted here: PySide6 6.12 crashes later if a watcher is deleted while it is
        # still being reported; it goes with the Revealer (one small object per click)
        if watcher in self._watchers:
            self._watchers.remove(watcher)
        if watcher.isError():
            err = watcher.error()
            log.info("ShowItems failed (%s: %s); opening the folder", err.name(), err.message())
            if not self._fall_back(path):
                self.failed.emit(path)

    def _fall_back(self, path: str) -> bool:
        self.fallbacks.append(path)
        return self._open_folder(path)

    def pending(self) -> int:
        """Calls still waiting for the file manager's answer."""
        return len(self._watchers)
