"""What the person is searching for, as plain data: no Qt, so every rule of the search flow is
tested in microseconds and the window only mirrors it.

A query is words, or a picture ("search by this picture": dropped on the search box), or a
file of the library ("find similar"); words typed while a picture is the query are mixed with
it, because typing them is asking for that. Refinements ("more / less like this") and the page
size belong to one query and are dropped when it changes.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any

PAGE_K = 60  # results fetched per search (the cutoff decides how many show first)


@dataclass
class SearchState:
    text: str = ""
    image: str | None = None  # a picture file as the query (dropped on the search box)
    similar_to: int | None = None  # "find similar": this library file is the query
    similar_path: str | None = None
    similar_label: str = ""
    positives: set[int] = field(default_factory=set)
    negatives: set[int] = field(default_factory=set)
    k: int = PAGE_K
    set_aside: str = ""  # the words in the box when a picture was dropped, back on clearing it

    # -- reading ----------------------------------------------------------------------------
    def empty(self) -> bool:
        return not self.text.strip() and self.image is None and self.similar_to is None

    @property
    def picture_mode(self) -> bool:
        """A picture (dropped or a library file) is the query, with or without words."""
        return self.image is not None or self.similar_to is not None

    @property
    def picture_name(self) -> str:
        if self.similar_to is not None:
            return self.similar_label
        return os.path.basename(self.image) if self.image else ""

    @property
    def mixed(self) -> bool:
        """Words and a picture together: only when the person typed words after the drop."""
        return self.image is not None and bool(self.text.strip())

    @property
    def refined(self) -> bool:
        return bool(self.positives or self.negatives)

    def describe(self) -> str:
        """The query in words, for messages ("No matches for …")."""
        words = self.text.strip()
        if self.similar_to is not None:
            return f"similar to {self.similar_label}"
        if self.image and words:
            return f"“{words}” + {os.path.basename(self.image)}"
        if self.image:
            return f"like {os.path.basename(self.image)}"
        return f"“{words}”"

    def snapshot(self) -> SearchState:
        """An independent copy for the search thread (the UI thread keeps editing this one)."""
        return replace(self, positives=set(self.positives), negatives=set(self.negatives))

    def request(self, flt: Any = None, sort: str = "relevance") -> Any:
        """The core's SearchRequest for this state (imported lazily: the core's search module
        pulls in numpy and the decoder, which the window does not need to start)."""
        from indexer.catalogue import FileFilter
        from indexer.search import SearchRequest

        return SearchRequest(
            text=self.text.strip(), image=self.image, k=self.k, flt=flt or FileFilter(),
            positives=tuple(sorted(self.positives)), negatives=tuple(sorted(self.negatives)),
            similar_to=self.similar_to, sort=sort,
        )

    # -- editing ----------------------------------------------------------------------------
    def reset_refinements(self) -> None:
        self.positives.clear()
        self.negatives.clear()
        self.k = PAGE_K

    def clear(self) -> None:
        """Back to no query at all."""
        fresh = SearchState()
        self.__dict__.update(fresh.__dict__)

    def edit_text(self, text: str) -> bool:
        """The words in the box changed. Returns True when this dropped a "find similar"
        query (typing replaces it, the window hides its chip); a dropped picture stays and
        the words are mixed with it."""
        if text != self.text:
            self.reset_refinements()
        self.text = text
        if self.similar_to is not None and text.strip():
            self.similar_to, self.similar_path, self.similar_label = None, None, ""
            return True
        return False

    def use_picture(self, path: str) -> None:
        """A picture dropped on the search box becomes the whole query: the words that were
        in the box are set aside (not mixed in), and come back when the picture is cleared."""
        aside = self.text if self.text.strip() else self.set_aside
        self.clear()
        self.image = path
        self.set_aside = aside

    def find_similar(self, file_id: int, path: str, label: str) -> None:
        """A result of the library becomes the query."""
        self.clear()
        self.similar_to, self.similar_path, self.similar_label = file_id, path, label

    def clear_picture(self) -> str:
        """Stop searching by the picture. Returns the words for the box: those typed since the
        drop, or else the ones set aside by it."""
        words = self.text if self.text.strip() else self.set_aside
        self.clear()
        self.text = words
        return words

    def mark(self, file_id: int, mark: int) -> None:
        """+1 more like this, -1 less like this, 0 neither."""
        self.positives.discard(file_id)
        self.negatives.discard(file_id)
        if mark > 0:
            self.positives.add(file_id)
        elif mark < 0:
            self.negatives.add(file_id)

    def marks(self) -> dict[int, int]:
        return {**{f: 1 for f in self.positives}, **{f: -1 for f in self.negatives}}

    def load_more(self) -> None:
        """Fetch twice as many results next time."""
        self.k *= 2

    @property
    def paged_past_first(self) -> bool:
        return self.k > PAGE_K
