"""The window's building blocks, one module per widget family. Each one displays what it is
given and emits signals; none of them knows about the core or the controllers.

Everything is re-exported here, so `from ui.widgets import SearchField` keeps working.
"""
from ui.widgets.banner import Banner
from ui.widgets.common import (
    IMAGE_SUFFIXES, button, is_image_path, label, local_paths, repolish, rounded_pixmap, tool,
)
from ui.widgets.drop_overlay import DropOverlay
from ui.widgets.filters import DATE_CHOICES, KIND_CHOICES, SORT_CHOICES, FilterBar
from ui.widgets.pages import EmptyState, MessageView, SearchHint
from ui.widgets.preview import PreviewPane, ScaledImage
from ui.widgets.progress import ErrorPanel, ProgressPanel, format_duration
from ui.widgets.results_view import ResultsView
from ui.widgets.roots_panel import RootsPanel
from ui.widgets.search_bar import ImageChip, SearchField

__all__ = [
    "DATE_CHOICES", "IMAGE_SUFFIXES", "KIND_CHOICES", "SORT_CHOICES", "Banner", "DropOverlay",
    "EmptyState", "ErrorPanel", "FilterBar", "ImageChip", "MessageView", "PreviewPane",
    "ProgressPanel", "ResultsView", "RootsPanel", "ScaledImage", "SearchField", "SearchHint",
    "button", "format_duration", "is_image_path", "label", "local_paths", "repolish",
    "rounded_pixmap", "tool",
]
