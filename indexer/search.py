"""Search: a query becomes a vector (and keywords), the stores answer, files are ranked.

Vector side: knn over chunks with oversampling, then chunks are grouped per file (a note hit
on any chunk returns the note once, that chunk as its snippet). Keyword side: SQLite FTS5
BM25 over file names, folder names and note text. The two rankings are fused by reciprocal
rank fusion, which needs no score calibration between cosine and BM25.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace

import numpy as np

from indexer.catalogue import ChunkHit, FileFilter
from indexer.decode import DecodeError, load_image
from indexer.library import Library
from indexer.pipeline import EncoderLike

RRF_K = 60
OVERSAMPLE = 4

_STOPWORDS = frozenset(
    "a an the of and or in on at to for with from by is are was were be this that these those "
    "my your our its it as photo picture image of".split()
)


@dataclass(frozen=True)
class SearchResult:
    file_id: int
    path: str  # for display
    open_path: str  # exact path (surrogate-escaped) for opening the file
    kind: str
    score: float  # cosine similarity of the best chunk, or 0 when found by keyword only
    snippet: str | None = None
    taken_at: float | None = None
    keyword: bool = False  # matched by name/folder/note words
    fused: float = 0.0  # the ranking score (RRF)


def keyword_query(text: str) -> str | None:
    """FTS5 query from free text: words OR-ed, quoted (no FTS syntax injection), no stopwords."""
    words = [w for w in re.findall(r"\w+", text.lower()) if w not in _STOPWORDS]
    if not words:
        return None
    return " OR ".join(f'"{w}"' for w in dict.fromkeys(words))


class Searcher:
    def __init__(self, library: Library, encoder: EncoderLike) -> None:
        self.library = library
        self.encoder = encoder

    # -- query vectors ----------------------------------------------------------------------
    def text_vector(self, text: str) -> np.ndarray:
        return self.encoder.encode_texts([text])[0]

    def image_vector(self, path: str) -> np.ndarray:
        """An image as a query: the stored vector if it is indexed, else decode and embed it."""
        reader = self.library.reader()
        fid = reader.file_id_for_path(os.path.abspath(path))
        if fid is not None:
            v = reader.file_vector(fid)
            if v is not None:
                return v
        try:
            pixels = load_image(path, self.encoder.image_size).pixels
        except DecodeError as exc:
            raise ValueError(f"cannot use {path} as a query: {exc}") from None
        return self.encoder.encode_images(pixels[None])[0]

    # -- ranking ----------------------------------------------------------------------------
    def vector_ranking(
        self, vec: np.ndarray, k: int, flt: FileFilter | None = None
    ) -> list[SearchResult]:
        """Files ranked by their best chunk's cosine similarity."""
        want = max(k * OVERSAMPLE, k + 16)
        reader = self.library.reader()
        while True:
            ids, scores = self.library.vectors.knn(vec, want, flt)
            hits = reader.chunk_hits(ids.tolist())
            best: dict[int, tuple[float, ChunkHit]] = {}
            for cid, score in zip(ids.tolist(), scores.tolist()):
                hit = hits.get(cid)
                if hit is None:  # deleted or not yet committed: never shown half-written
                    continue
                if hit.file_id not in best or score > best[hit.file_id][0]:
                    best[hit.file_id] = (score, hit)
            exhausted = len(ids) < want
            if len(best) >= k or exhausted or want >= 8 * k * OVERSAMPLE:
                break
            want *= 2  # many chunks of a few long notes: look further to fill k files
        ranked = sorted(best.values(), key=lambda t: -t[0])[:k]
        return [
            SearchResult(
                h.file_id, h.path, os.fsdecode(h.path_raw), h.kind, float(s), h.text, h.taken_at
            )
            for s, h in ranked
        ]

    def keyword_ranking(
        self, text: str, k: int, flt: FileFilter | None = None
    ) -> list[SearchResult]:
        q = keyword_query(text)
        if q is None:
            return []
        reader = self.library.reader()
        rows = reader.keyword_search(q, flt or FileFilter(), k)
        files = reader.files_by_ids([r[0] for r in rows])
        out = []
        for fid, _bm25, snippet in rows:
            f = files.get(fid)
            if f is None:
                continue
            out.append(
                SearchResult(fid, f.path, os.fsdecode(f.path_raw), f.kind, 0.0,
                             snippet or None, f.taken_at, keyword=True)
            )
        return out

    def search(
        self,
        text: str | None = None,
        *,
        vector: np.ndarray | None = None,
        k: int = 20,
        flt: FileFilter | None = None,
        mode: str = "hybrid",
    ) -> list[SearchResult]:
        """mode: 'hybrid' (default), 'vector' or 'keyword'."""
        if mode not in ("hybrid", "vector", "keyword"):
            raise ValueError(f"unknown search mode {mode!r}")
        if vector is None and text is None:
            raise ValueError("nothing to search for")
        vec_results: list[SearchResult] = []
        kw_results: list[SearchResult] = []
        depth = max(k * 3, 50)
        if mode != "keyword":
            v = vector if vector is not None else self.text_vector(text or "")
            vec_results = self.vector_ranking(v, depth if mode == "hybrid" else k, flt)
        if mode != "vector" and text:
            kw_results = self.keyword_ranking(text, depth if mode == "hybrid" else k, flt)
        if mode == "vector":
            return vec_results[:k]
        if mode == "keyword":
            return kw_results[:k]
        return fuse(vec_results, kw_results)[:k]


def fuse(vec: list[SearchResult], kw: list[SearchResult]) -> list[SearchResult]:
    """Reciprocal rank fusion; a file keeps its cosine score and gains the keyword snippet."""
    merged: dict[int, SearchResult] = {}
    for rank, r in enumerate(vec):
        merged[r.file_id] = replace(r, fused=1.0 / (RRF_K + rank + 1))
    for rank, r in enumerate(kw):
        bonus = 1.0 / (RRF_K + rank + 1)
        if r.file_id in merged:
            m = merged[r.file_id]
            merged[r.file_id] = replace(
                m, fused=m.fused + bonus, keyword=True, snippet=m.snippet or r.snippet
            )
        else:
            merged[r.file_id] = replace(r, fused=bonus)
    return sorted(merged.values(), key=lambda r: -r.fused)
