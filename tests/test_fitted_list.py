"""The folder list and the error list are one kind of list (ui.widgets.common.fitted_list):
rows as wide as the list, elided by their delegate, never a sideways scroll."""
from __future__ import annotations

from PySide6.QtWidgets import QListView

from ui.delegates import ErrorDelegate, RootDelegate
from ui.models import ErrorsModel, RootsModel
from ui.widgets import ErrorPanel
from ui.widgets.common import fitted_list
from ui.widgets.roots_panel import RootsPanel


def _is_fitted(view: QListView, name: str, delegate: type) -> bool:
    from PySide6.QtCore import Qt

    return (view.objectName() == name and isinstance(view.itemDelegate(), delegate)
            and view.resizeMode() == QListView.ResizeMode.Adjust
            and view.horizontalScrollBarPolicy() == Qt.ScrollBarPolicy.ScrollBarAlwaysOff)


def test_fitted_list_and_both_panels(qtbot) -> None:
    model = ErrorsModel()
    view = fitted_list("X", model, ErrorDelegate)
    qtbot.addWidget(view)
    assert view.model() is model and _is_fitted(view, "X", ErrorDelegate)

    errors = ErrorPanel(ErrorsModel())
    roots = RootsPanel(RootsModel())
    qtbot.addWidget(errors)
    qtbot.addWidget(roots)
    assert _is_fitted(errors.view, "ErrorsList", ErrorDelegate)
    assert errors.view.uniformItemSizes() and errors.view.alternatingRowColors()
    assert _is_fitted(roots.view, "RootsList", RootDelegate)
    assert roots.view.hasMouseTracking() and roots.view.accessibleName() == "Indexed folders"
