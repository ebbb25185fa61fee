""""Show in folder": the freedesktop FileManager1.ShowItems call, against a fake file manager
on a private D-Bus session bus, and the fallback to opening the folder."""
from __future__ import annotations

import shutil
import subprocess

import pytest
from PySide6.QtCore import ClassInfo, QObject, Slot

from app.reveal import FM_INTERFACE, FM_PATH, FM_SERVICE, Revealer, file_uri, show_items_call

NAME = "/home/ann/Pictures/Beach day/été 2024 #1.jpg"


def test_the_call_names_the_file_by_its_uri():
    msg = show_items_call(NAME)
    assert (msg.service(), msg.path(), msg.interface(), msg.member()) == (
        FM_SERVICE, FM_PATH, FM_INTERFACE, "ShowItems")
    uris, startup = msg.arguments()
    assert uris == ["file:///home/ann/Pictures/Beach%20day/%C3%A9t%C3%A9%202024%20%231.jpg"]
    assert uris == [file_uri(NAME)] and startup == ""


class NoBus:
    def isConnected(self) -> bool:  # noqa: N802
        return False


def test_without_a_session_bus_the_folder_opens(qapp):
    opened = []
    reveal = Revealer(bus=NoBus(), open_folder=lambda p: opened.append(p) or True,
                      platform="linux")
    assert reveal(NAME) is True
    assert opened == [NAME] and reveal.fallbacks == [NAME]


@pytest.fixture
def session_bus():
    """A private session bus (dbus-daemon), so the tests never touch the desktop's."""
    if shutil.which("dbus-daemon") is None:
        pytest.skip("dbus-daemon is not installed")
    proc = subprocess.Popen(["dbus-daemon", "--session", "--print-address=1", "--nofork"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    address = proc.stdout.readline().strip()
    assert address.startswith("unix:"), address
    yield address
    from PySide6.QtDBus import QDBusConnection

    for name in list(_connections):  # before the daemon goes: no call left in flight
        QDBusConnection.disconnectFromBus(name)
    _connections.clear()
    proc.terminate()
    proc.wait(10)


_connections: list[str] = []
_alive: list[QObject] = []


@ClassInfo({"D-Bus Interface": FM_INTERFACE})
class FakeFileManager(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[list[str], str]] = []

    @Slot("QStringList", str)
    def ShowItems(self, uris, startup_id):  # noqa: N802 - the D-Bus method's name
        self.calls.append((list(uris), startup_id))


def connect(address: str, name: str):
    from PySide6.QtDBus import QDBusConnection

    bus = QDBusConnection.connectToBus(address, name)
    assert bus.isConnected()
    _connections.append(name)
    return bus


def test_the_file_manager_is_asked_to_select_the_file(qtbot, session_bus):
    from PySide6.QtDBus import QDBusConnection

    server = connect(session_bus, "fake-file-manager")
    fm = FakeFileManager()
    _alive.append(fm)  # PySide6 crashes if a registered object is deleted: keep it for good
    assert server.registerObject(FM_PATH, fm, QDBusConnection.RegisterOption.ExportAllSlots)
    assert server.registerService(FM_SERVICE)
    opened = []
    reveal = Revealer(bus=connect(session_bus, "magpie"), platform="linux",
                      open_folder=lambda p: opened.append(p) or True)
    assert reveal(NAME) is True
    qtbot.waitUntil(lambda: bool(fm.calls) and reveal.pending() == 0, timeout=5000)
    assert fm.calls == [([file_uri(NAME)], "")]
    assert opened == [] and reveal.fallbacks == []  # selected, not just the folder opened


def test_no_file_manager_on_the_bus_opens_the_folder(qtbot, session_bus):
    opened = []
    failed = []
    reveal = Revealer(bus=connect(session_bus, "magpie-2"), platform="linux",
                      open_folder=lambda p: opened.append(p) or True)
    reveal.failed.connect(failed.append)
    assert reveal(NAME) is True
    qtbot.waitUntil(lambda: bool(opened), timeout=5000)
    assert opened == [NAME] and failed == []

    # and when even the folder cannot be opened, the window is told
    reveal._open_folder = lambda p: False
    with qtbot.waitSignal(reveal.failed, timeout=5000) as sig:
        reveal("/nowhere/x.png")
    assert sig.args == ["/nowhere/x.png"]


def test_show_in_folder_in_the_window_uses_it(qtbot, tmp_path):
    from app.gui import make_window

    window, ctl = make_window(str(tmp_path / "lib"))
    qtbot.addWidget(window)
    assert ctl.revealer is ctl.reveal and isinstance(ctl.reveal, Revealer)
    opened = []
    ctl.reveal._bus = NoBus()
    ctl.reveal._open_folder = lambda p: opened.append(p) or False

    class R:
        path = open_path = NAME

    ctl.reveal_result(R())
    assert opened == [NAME]
    assert window.last_notice == f"Could not show {NAME}"


def test_the_folder_opens_with_gio_where_qt_cannot(monkeypatch):
    """No xdg-open (a bare X session): QDesktopServices says no, `gio open` is the fallback."""
    from PySide6.QtGui import QDesktopServices

    from app import reveal

    monkeypatch.setattr(QDesktopServices, "openUrl", staticmethod(lambda url: False))
    started = []
    ok = reveal.open_folder(NAME, which=lambda n: f"/usr/bin/{n}",
                            start=lambda prog, args: started.append((prog, args)) or True)
    assert ok and started == [("/usr/bin/gio", ["open", "/home/ann/Pictures/Beach day"])]
    assert not reveal.open_folder(NAME, which=lambda n: None, start=lambda *a: True)
