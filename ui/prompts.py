"""Questions the window asks before doing something a person may not expect: quitting while
indexing, and making a library in a folder that already holds other things. Each returns the
answer as a bool; the controllers hold them as replaceable callables (tests answer directly).
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QMessageBox, QWidget

# What Library.open writes into a new library folder (indexer/library.py)
LIBRARY_FILES = ("magpie-library.json", "lock", "models/ (the search index)")


def ask_quit_while_indexing(parent: QWidget | None, what: str) -> bool:
    """True: quit now and resume later; False: keep indexing. Nothing is lost either way:
    every batch is committed as it is done."""
    box = QMessageBox(QMessageBox.Icon.Question, "Magpie", "Magpie is still indexing",
                      QMessageBox.StandardButton.NoButton, parent)
    box.setInformativeText(
        f"{what}\n\nEverything indexed so far is saved. If you quit now, the rest is indexed "
        "the next time you open Magpie.")
    quit_button = box.addButton("Quit and resume later", QMessageBox.ButtonRole.AcceptRole)
    keep = box.addButton("Keep indexing", QMessageBox.ButtonRole.RejectRole)
    box.setDefaultButton(keep)
    box.setEscapeButton(keep)
    box.exec()
    return box.clickedButton() is quit_button


def confirm_new_library(parent: QWidget | None, folder: Path, entries: list[str]) -> bool:
    """True only if the person agrees to make a library in a folder holding other things."""
    shown = ", ".join(entries[:4]) + (f" and {len(entries) - 4} more" if len(entries) > 4
                                      else "")
    box = QMessageBox(QMessageBox.Icon.Warning, "Magpie",
                      f"“{folder.name or folder}” is not a Magpie library",
                      QMessageBox.StandardButton.Cancel, parent)
    box.setInformativeText(
        f"{folder}\n\nIt already holds other things ({shown}). Making a library here adds "
        + ", ".join(LIBRARY_FILES) + " beside them. Your files are not touched.\n\n"
        "An empty folder of its own is usually tidier. Nothing is written unless you choose "
        "“Create library here”.")
    create = box.addButton("Create library here", QMessageBox.ButtonRole.AcceptRole)
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)
    box.exec()
    return box.clickedButton() is create
