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
from indexer.ocr import fold
from indexer.pipeline import EncoderLike
from indexer.query import QueryError, Term, keyword_text, parse_query
from indexer.vectors import matvec

RRF_K = 60
OVERSAMPLE = 4
# Rocchio weights (the classic SMART values): keep the query, move towards liked results
# more than away from disliked ones.
ROCCHIO_ALPHA, ROCCHIO_BETA, ROCCHIO_GAMMA = 1.0, 0.75, 0.25
# Where the results stop standing out (tuned on bench/eval_search.py's collection and two demo
# libraries, `--demo 2000,6000`; see bench/RESULTS.md): the widest break in the query's
# similarity profile (its BREAK_DEPTH nearest chunks, in standard deviations above the library's
# background), if that break is BREAK_RATIO times the mean spacing above it (STRONG_BREAK_RATIO
# when the break lies wholly below BREAK_FLOOR_Z, down to BREAK_LOW_Z) and at least BREAK_MIN_Z
# wide; the best match must reach BREAK_FLOOR_Z, and a lone standout STANDOUT_Z. With no such
# break, everything STANDOUT_Z or more above the background stands out.
STANDOUT_Z = 2.5
BREAK_DEPTH = 512
BREAK_FLOOR_Z = 2.25
BREAK_LOW_Z = 1.5
BREAK_RATIO = 6.0
STRONG_BREAK_RATIO = 30.0
BREAK_MIN_Z = 0.1
MIN_VECTOR_WEIGHT = 0.25
# The vector ranking gets full weight in the fusion when its best match is this many
# standard deviations above the background (less, proportionally, below).
CONFIDENT_Z = 3.0
BACKGROUND_SAMPLE = 1024
MIN_KIND_SAMPLE = 8

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
    z: float = 0.0  # standard deviations above a typical item of its kind, for this query

    @property
    def kind_word(self) -> str:
        return "note" if self.kind == "text" else "picture"

    def explain(self) -> str:
        """What the numbers mean, for tooltips and --explain."""
        parts = [
            f"similarity {self.score:.3f} (cosine between the query and this item; "
            "comparable between queries only through z)",
            f"z {self.z:+.1f} (how far above a typical {self.kind_word} of your library it "
            f"scores for this query; the cutoff sits where the scores break, else at "
            f"{STANDOUT_Z:g})",
        ]
        if self.keyword:
            parts.append("also matched by words in its name, folder or text")
        return "\n".join(parts)


@dataclass(frozen=True)
class SearchRequest:
    """Everything a search needs; the GUI and CLI build one of these."""

    text: str = ""  # free text or arithmetic ("red + circle - square", "beach:2 + sunset")
    image: str | None = None  # an image file as (part of) the query
    k: int = 50
    flt: FileFilter = FileFilter()
    mode: str = "hybrid"
    positives: tuple[int, ...] = ()  # file ids marked "more like this"
    negatives: tuple[int, ...] = ()  # file ids marked "less like this"
    similar_to: int | None = None  # a file id as the query ("find similar")
    sort: str = "relevance"  # or "date" (newest first)


@dataclass(frozen=True)
class SearchPage:
    results: list[SearchResult]
    cutoff: int  # results[:cutoff] stand out; the rest are "show more"
    elapsed_ms: float
    background: tuple[float, float] = (0.0, 0.0)  # mean and std of background similarity


def keyword_query(text: str, *, all_words: bool = False) -> str | None:
    """FTS5 query from free text: words quoted (no FTS syntax injection), no stopwords;
    OR-ed, or AND-ed with all_words."""
    words = [w for w in re.findall(r"\w+", text.lower()) if w not in _STOPWORDS]
    if not words:
        return None
    return (" AND " if all_words else " OR ").join(f'"{w}"' for w in dict.fromkeys(words))


class Searcher:
    def __init__(self, library: Library, encoder: EncoderLike) -> None:
        self.library = library
        self.encoder = encoder
        self._background: dict[str | None, np.ndarray] = {}
        self._background_count = -1

    # -- requests ---------------------------------------------------------------------------
    def query_vector(self, terms: list[Term]) -> np.ndarray:
        """Weighted sum of term vectors, normalised (query arithmetic)."""
        total = np.zeros(self.encoder.dim, np.float32)
        texts = [t for t in terms if t.text is not None]
        if texts:
            vecs = self.encoder.encode_texts([t.text for t in texts])
            for t, v in zip(texts, vecs):
                total += t.weight * v
        for t in terms:
            if t.image is not None:
                total += t.weight * self.image_vector(t.image)
        norm = float(np.linalg.norm(total))
        if norm < 1e-6:
            raise QueryError("the terms cancel out; there is nothing left to search for")
        return total / norm

    def refine(self, vec: np.ndarray, positives: tuple[int, ...], negatives: tuple[int, ...]
               ) -> np.ndarray:
        """Rocchio: move the query towards results marked relevant, away from the others."""
        reader = self.library.reader()

        def centroid(ids: tuple[int, ...]) -> np.ndarray | None:
            vs = [v for v in (reader.file_vector(i) for i in ids) if v is not None]
            return np.mean(vs, axis=0) if vs else None

        out = ROCCHIO_ALPHA * vec
        pos, neg = centroid(positives), centroid(negatives)
        if pos is not None:
            out = out + ROCCHIO_BETA * pos
        if neg is not None:
            out = out - ROCCHIO_GAMMA * neg
        return (out / (np.linalg.norm(out) + 1e-12)).astype(np.float32)

    def background(self, kind: str | None = None) -> np.ndarray:
        """A random sample of library vectors (of one kind when given): what a typical item
        scores for a query. Resampled when the library has grown or shrunk by a tenth."""
        count = self.library.vectors.count()
        if abs(count - self._background_count) > 0.1 * max(self._background_count, 1):
            self._background = {}
            self._background_count = count
        if kind not in self._background:
            self._background[kind] = self.library.reader().sample_vectors(
                BACKGROUND_SAMPLE, kind=kind)
        return self._background[kind]

    def run(self, req: SearchRequest) -> SearchPage:
        import time

        started = time.perf_counter()
        reader = self.library.reader()
        terms = parse_query(req.text) if req.text.strip() else []
        if req.image:
            terms.append(Term(1.0, image=req.image))
        words = keyword_text(terms) if req.mode != "vector" else ""
        mode = req.mode if words else "vector"
        vec: np.ndarray | None = None
        if req.similar_to is not None:
            vec = reader.file_vector(req.similar_to)
            if vec is None:
                raise QueryError("that item is no longer in the library")
        if terms:
            tv = self.query_vector(terms)
            vec = tv if vec is None else (vec + tv) / np.linalg.norm(vec + tv)
        if vec is None:
            raise QueryError("type something to search for, or drop an image")
        if req.positives or req.negatives:
            vec = self.refine(vec, req.positives, req.negatives)
        results = self.search(words or None, vector=vec, k=req.k, flt=req.flt, mode=mode)
        if req.similar_to is not None:
            results = [r for r in results if r.file_id != req.similar_to]
        mu, sd = self.z_stats(vec)
        stats = {kind: self.z_stats(vec, kind) for kind in ("image", "text")}
        scored = []
        for r in results:
            score = r.score
            if r.score == 0.0 and r.keyword:  # found by words only: give it a real similarity
                fv = reader.file_vector(r.file_id)
                score = float(fv @ vec) if fv is not None else 0.0
            k_mu, k_sd = stats.get(r.kind, (mu, sd))
            scored.append(replace(r, score=score, z=(score - k_mu) / k_sd))
        floor = standout_floor(self.similarity_profile(vec, req.flt, stats))
        standout = [r for r in scored if r.z >= floor or r.keyword]
        rest = [r for r in scored if not (r.z >= floor or r.keyword)]
        ordered = standout + rest  # ranking order is kept within each group
        cutoff = max(len(standout), 1 if ordered else 0)
        if req.sort == "date":
            ordered = sorted(ordered[:cutoff], key=_newest) + sorted(ordered[cutoff:], key=_newest)
        return SearchPage(ordered, cutoff, (time.perf_counter() - started) * 1000, (mu, sd))

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
        """Files whose name, folder or text hold every word; only if none do, any word."""
        reader = self.library.reader()
        rows = []
        for all_words in (True, False):
            q = keyword_query(text, all_words=all_words)
            if q is None:
                return []
            rows = reader.keyword_search(q, flt or FileFilter(), k)
            if rows:
                break
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

    def ocr_ranking(
        self, text: str, k: int, flt: FileFilter | None = None
    ) -> list[SearchResult]:
        """Pictures whose read text holds the query's words; the matching line is the snippet.
        Query words are taken as typed ("42.50", "RE16"), folded like the read text."""
        words = [fold(w) for w in text.split() if w.lower().strip(".,;:!?") not in _STOPWORDS]
        words = [w for w in words if len(w) >= 3]
        if not words:
            return []
        reader = self.library.reader()
        hits = reader.ocr_search(words, flt or FileFilter(), k)
        if hits and hits[0].matched == len(set(words)):  # like names: all words, else any
            hits = [h for h in hits if h.matched == len(set(words))]
        files = reader.files_by_ids([h.file_id for h in hits])
        out = []
        for h in hits:
            f = files.get(h.file_id)
            if f is not None:
                out.append(SearchResult(h.file_id, f.path, os.fsdecode(f.path_raw), f.kind, 0.0,
                                        h.line, f.taken_at, keyword=True))
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
        """mode: 'hybrid' (default), 'vector' or 'keyword'.

        The two rankings run one after the other: running the keyword ranking on a second
        thread while the query is encoded gave p50 33-34 ms against 34-38 ms at 100k items on
        2 cores (within noise; torch already uses both cores), not worth a thread."""
        if mode not in ("hybrid", "vector", "keyword"):
            raise ValueError(f"unknown search mode {mode!r}")
        if vector is None and text is None:
            raise ValueError("nothing to search for")
        vec_results: list[SearchResult] = []
        kw_results: list[SearchResult] = []
        v = None
        if mode != "keyword":
            v = vector if vector is not None else self.text_vector(text or "")
            vec_results = self.vector_ranking(v, _depth(k) if mode == "hybrid" else k, flt)
        if mode != "vector" and text:
            kw_results = self.keyword_ranking(text, _depth(k) if mode == "hybrid" else k, flt)
            # words read in pictures join the keyword side (OCR; see ocr_ranking)
            kw_results = merge_keyword_rankings(
                kw_results, self.ocr_ranking(text, _depth(k) if mode == "hybrid" else k, flt))
        if mode == "vector":
            return vec_results[:k]
        if mode == "keyword":
            return kw_results[:k]
        return fuse(vec_results, kw_results, self.vector_confidence(v, vec_results))[:k]

    def similarity_profile(
        self, vec: np.ndarray, flt: FileFilter | None, stats: dict[str, tuple[float, float]]
    ) -> list[float]:
        """z of the query's BREAK_DEPTH nearest chunks: deeper than the page, so a break can be
        seen even when every result shown is a match (90 yellow stars, a page of 60). Each
        chunk is measured against its own kind's background (`stats`)."""
        ids, scores = self.library.vectors.knn(vec, BREAK_DEPTH, flt)
        hits = self.library.reader().chunk_hits(ids.tolist())
        out = []
        for cid, score in zip(ids.tolist(), scores.tolist()):
            hit = hits.get(cid)
            if hit is not None and hit.kind in stats:
                mu, sd = stats[hit.kind]
                out.append((score - mu) / sd)
        return out

    def z_stats(self, vec: np.ndarray, kind: str | None = None) -> tuple[float, float]:
        """Mean and spread of this query's similarity to a typical item of the library (of
        that kind: a text query sits closer to every note than to any picture, CLIP's modality
        gap, so notes and pictures each have their own "typical"). A kind with too few items
        for a spread is measured against the whole library."""
        bg = self.background(kind)
        if kind is not None and len(bg) < MIN_KIND_SAMPLE:
            bg = self.background()
        if len(bg) == 0:
            return 0.0, 1.0
        sims = matvec(bg, vec)
        return float(np.mean(sims)), max(float(np.std(sims)), 1e-3)

    def vector_confidence(self, vec: np.ndarray | None, results: list[SearchResult]) -> float:
        """How much the model's ranking stands out for this query, in [MIN_VECTOR_WEIGHT, 1].

        A query in words the model knows puts its best match far above the library's
        background; an unknown word ("invoice" for a model that never saw one) does not, and
        then the keyword ranking should lead the fusion.
        """
        if vec is None or not results:
            return 1.0
        mu, sd = self.z_stats(vec)
        z_top = (results[0].score - mu) / sd
        return float(np.clip(z_top / CONFIDENT_Z, MIN_VECTOR_WEIGHT, 1.0))


def _depth(k: int) -> int:
    """How deep each ranking goes before the fusion picks the top k."""
    return max(k * 3, 50)


def standout_floor(zs: list[float]) -> float:
    """The z above which results stand out for this query.

    Matches and near misses are usually separated by a break in the similarity profile: a
    step several times wider than the spacing between the matches above it (91 yellow stars at
    z 2.2-2.5, then the first orange star at 1.9). The widest such break decides. A break whose
    upper side is under BREAK_FLOOR_Z must be much sharper (STRONG_BREAK_RATIO): a query in
    words the model doesn't know still pulls a loose group of similar items (plain-English
    notes) a little above the rest. A break after the first item counts only if that item
    reaches STANDOUT_Z. Without a break, STANDOUT_Z decides. `zs`: the profile, in any order.
    """
    top = sorted((z for z in zs if z >= BREAK_LOW_Z), reverse=True)
    below = max((z for z in zs if z < BREAK_LOW_Z), default=None)
    if below is not None:
        top.append(below)  # the step down past the lowest level looked at is a break too
    if not top or top[0] < BREAK_FLOOR_Z:
        return STANDOUT_Z
    best_width, floor = 0.0, STANDOUT_Z
    for i in range(len(top) - 1):
        if i == 0 and top[0] < STANDOUT_Z:
            continue
        width = top[i] - top[i + 1]
        spacing = (top[0] - top[i]) / i if i else 0.0  # mean step among those above
        ratio = BREAK_RATIO if top[i] >= BREAK_FLOOR_Z else STRONG_BREAK_RATIO
        if width >= BREAK_MIN_Z and width >= ratio * spacing and width > best_width:
            best_width, floor = width, top[i] - width / 2  # mid-break: robust to rounding
    return floor


def _newest(r: SearchResult) -> float:
    return -(r.taken_at or 0.0)


def fuse(
    vec: list[SearchResult], kw: list[SearchResult], vector_weight: float = 1.0
) -> list[SearchResult]:
    """Weighted reciprocal rank fusion; a file keeps its cosine score and gains the keyword
    snippet. The vector side's weight is its confidence for this query (vector_confidence)."""
    merged: dict[int, SearchResult] = {}
    for rank, r in enumerate(vec):
        merged[r.file_id] = replace(r, fused=vector_weight / (RRF_K + rank + 1))
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


def merge_keyword_rankings(
    names_notes: list[SearchResult], read_text: list[SearchResult]
) -> list[SearchResult]:
    """One keyword ranking from two: names/notes (BM25) and words read in pictures (OCR),
    by reciprocal rank fusion. A picture found both ways shows the line read in it."""
    if not read_text:
        return names_notes
    merged: dict[int, SearchResult] = {}
    for ranking in (names_notes, read_text):
        for rank, r in enumerate(ranking):
            bonus = 1.0 / (RRF_K + rank + 1)
            m = merged.get(r.file_id)
            if m is None:
                merged[r.file_id] = replace(r, fused=bonus)
            else:
                merged[r.file_id] = replace(m, fused=m.fused + bonus,
                                            snippet=r.snippet or m.snippet)
    return sorted(merged.values(), key=lambda r: -r.fused)
