"""Search: a query becomes a vector (and keywords), the stores answer, files are ranked.

Vector side: knn over chunks with oversampling, then chunks are grouped per file (a note hit
on any chunk returns the note once, that chunk as its snippet). Keyword side: SQLite FTS5
BM25 over file names, folder names and note text.

The two are fused by calibrated evidence, not by rank: each result gets a relevance in [0, 1]
that means the same for every query, kind and model. Vector evidence is its z (standard
deviations above a typical item *of its kind* for this query) measured against the point where
this query's results stop standing out (`standout_floor`: the widest break in the similarity
profile, else a fixed z). Keyword evidence is how the words
occur: as a phrase in the name, as a phrase, near each other, scattered, only some of them
(`KEYWORD_RELEVANCE`). Words read in a picture (OCR) are graded on the same scale
(`text_match.evidence`) and count in full: they are the picture itself, where a picture's name
is indirect evidence. A note that holds the query's words in different sentences thus ranks
below pictures the model clearly matches, while a phrase match ranks with the best. Results
stand out when their relevance is at least 0.5; when none does, the page says so
(`SearchPage.no_strong_matches`) and still lists the closest items. bench/sweep_cutoff.py
reproduces every constant below.
"""
from __future__ import annotations

import math
import os
import re
import time
import weakref
from dataclasses import dataclass, field, replace
from statistics import NormalDist

import numpy as np

from indexer import text_match
from indexer.catalogue_api import OcrCatalogue, supports_ocr
from indexer.catalogue import ChunkHit, FileFilter, name_terms
from indexer.decode import DecodeError, load_image
from indexer.library import Library
from indexer.pipeline import EncoderLike
from indexer.query import QueryError, Term, keyword_text, parse_query
from indexer.search_split import divider_at
from indexer.vectors import matvec

RRF_K = 60  # only breaks ties between results of equal relevance
OVERSAMPLE = 4
# Rocchio weights (the classic SMART values): keep the query, move towards liked results
# more than away from disliked ones.
ROCCHIO_ALPHA, ROCCHIO_BETA, ROCCHIO_GAMMA = 1.0, 0.75, 0.25
# Where results stop standing out (bench/sweep_cutoff.py; see standout_floor): the widest
# break in the query's similarity profile (its BREAK_DEPTH nearest chunks, in standard
# deviations above the background of their kind), if that break is BREAK_RATIO times the mean
# spacing above it (STRONG_BREAK_RATIO when wholly below BREAK_FLOOR_Z, down to BREAK_LOW_Z) and
# at least BREAK_MIN_Z wide; a lone standout needs STANDOUT_Z, as does everything without a
# break. A break whose group chance would make (CHANCE_GROUP_P) leaves only what is above the
# chance level of the library size (null_floor) standing out.
BREAK_DEPTH = 512
STANDOUT_Z = 2.5
BREAK_FLOOR_Z = 2.25
BREAK_LOW_Z = 1.5
BREAK_RATIO = 6.0
STRONG_BREAK_RATIO = 30.0
BREAK_MIN_Z = 0.1
MIN_STANDOUT_Z = 2.0
# A group above a break must be one that chance makes in under CHANCE_GROUP_P of libraries of
# this size (chance_of_group): two random items at z 2.4 among 300 are what chance gives.
CHANCE_GROUP_P = 0.5
NULL_QUANTILE = 0.95
# Relevance of vector evidence: logistic in z around the query's standout floor, so 0.5 means
# "at the edge of standing out" for every query; REL_SCALE z-units from 0.5 to 0.73.
REL_SCALE = 0.5
# Relevance of keyword evidence, by how the query's words occur (catalogue.keyword_evidence):
# 4 phrase in the file name, 3 phrase anywhere, 2 all words near each other (within
# NEAR_PER_WORD tokens per extra word), 1 all words but scattered, 0 only some words.
# 5 (search.py) the query is the file's name, with or without its extension: it names the file.
KEYWORD_RELEVANCE = {5: 1.0, 4: 0.95, 3: 0.9, 2: 0.8, 1: 0.3, 0: 0.1}
NEAR_PER_WORD = 3
# A picture's name is indirect evidence: when the model confirms the names (at least
# NAME_CONFIRM_SHARE of the pictures named after the query stand out by vector too), a name
# match counts only as far as the picture looks like it; NAME_TRUST of it is kept regardless.
# When the model does not confirm them (a word it cannot see: "invoice"), names are trusted.
NAME_TRUST = 0.5
NAME_CONFIRM_SHARE = 0.5
# Notes are matched by the model through their text (text-to-text similarity), weaker evidence
# of the note being about the query than the words themselves: their vector relevance is
# scaled by NOTE_VECTOR_WEIGHT.
NOTE_VECTOR_WEIGHT = 1.0
STANDOUT_RELEVANCE = 0.5
# A query the model reads as nothing: its vector is within NONSENSE_COS (cosine) of what the
# model makes of meaningless strings (NONSENSE_PROBES); then no result stands out by looks
# alone (gibberish, or words the model never learned), only by words in names and notes.
NONSENSE_PROBES = ("", "xq", "zzzz qqqq", "blim vort snee", "plorf")
NONSENSE_COS = 0.9
BACKGROUND_SAMPLE = 1024
MIN_KIND_SAMPLE = 8

_STOPWORDS = frozenset(
    "a an the of and or in on at to for with from by is are was were be this that these those "
    "my your our its it as photo picture image of".split()
)
_EVIDENCE_WORDS = {
    5: "the query as its whole name",
    4: "the words as a phrase in its name",
    3: "the words as a phrase",
    2: "all the words, close together",
    1: "all the words, but scattered",
    0: "some of the words",
}
_TEXT_EVIDENCE_WORDS = {
    3: "the words exactly",
    2: "all the words, close together (some as part of a word or nearly: a misreading)",
    1: "all the words, but scattered",
    0: "some of the words",
}


@dataclass(frozen=True)
class SearchResult:
    file_id: int
    path: str  # for display
    open_path: str  # exact path (surrogate-escaped) for opening the file
    kind: str
    score: float  # cosine similarity of the best chunk (for keyword-only hits, of the file)
    snippet: str | None = None
    taken_at: float | None = None
    keyword: bool = False  # matched by name/folder/note words
    fused: float = 0.0  # reciprocal-rank score: breaks ties of equal relevance
    z: float = 0.0  # standard deviations above a typical item of its kind, for this query
    relevance: float = 0.0  # calibrated, 0..1; >= 0.5 stands out (same meaning for any query)
    stands_out: bool = False
    keyword_level: int = -1  # catalogue.keyword_evidence level; -1: no word matched
    text_level: int = -1  # text_match.evidence level of the words read in it; -1: none
    matched_terms: tuple[str, ...] = ()  # query words found in its name, folder or text
    copies: int = 1  # identical files (same content) folded into this result
    copy_paths: tuple[str, ...] = ()  # the other copies' paths

    @property
    def kind_word(self) -> str:
        return "note" if self.kind == "text" else "picture"

    @property
    def relevance_pct(self) -> int:
        """The relevance as a 0-100 badge number."""
        return int(round(100 * self.relevance))

    def explain(self) -> str:
        """What the numbers mean, for tooltips and --explain."""
        parts = [
            f"relevance {self.relevance_pct} of 100 ({'stands out' if self.stands_out else 'does not stand out'}"
            f"; 50 is the edge, the same for every query and model)",
            f"similarity {self.score:.3f} (cosine between the query and this item; "
            "comparable between queries only through z)",
            f"z {self.z:+.1f} (how far above a typical {self.kind_word} of your library it "
            "scores for this query)",
        ]
        if self.keyword_level >= 0:
            parts.append(f"its name, folder or text holds {_EVIDENCE_WORDS[self.keyword_level]}"
                         + (f" ({', '.join(self.matched_terms)})" if self.matched_terms else ""))
        if self.text_level >= 0:
            parts.append(f"the words read in it hold {_TEXT_EVIDENCE_WORDS[self.text_level]}")
        if self.copies > 1:
            parts.append(f"{self.copies} identical copies")
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
    cutoff: int  # results[:cutoff] stand out (0: none does); the rest are "other results"
    elapsed_ms: float
    background: tuple[float, float] = (0.0, 0.0)  # mean and std of background similarity
    library_counts: dict[str, int] = field(default_factory=dict)  # {"images": n, "notes": m}
    query_truncated: bool = False  # a text term is longer than the model's token window
    query_words: tuple[str, ...] = ()  # the words keyword matching looked for (highlighting)
    text_words: tuple[str, ...] = ()  # the same for words read in pictures (folded; marks)

    @property
    def no_strong_matches(self) -> bool:
        """Nothing stands out: the results are only the closest items, not matches."""
        return self.cutoff == 0

    @property
    def standouts(self) -> list[SearchResult]:
        """The results that stand out (above the divider)."""
        return self.results[: self.cutoff]

    @property
    def other_results(self) -> list[SearchResult]:
        """The closest of the rest: what the window and `search` list under "Other results"."""
        return self.results[self.cutoff:]

    def divider_at(self, shown: int) -> int | None:
        """Where "Other results" goes among the first `shown` results (search_split)."""
        return divider_at(self.cutoff, shown)


def query_words(text: str) -> list[str]:
    """The words keyword matching looks for: lower-case, no stopwords, first occurrence."""
    return list(dict.fromkeys(w for w in re.findall(r"\w+", text.lower()) if w not in _STOPWORDS))


def keyword_query(text: str, *, all_words: bool = False) -> str | None:
    """FTS5 query from free text: words quoted (no FTS syntax injection), no stopwords;
    OR-ed, or AND-ed with all_words."""
    words = query_words(text)
    if not words:
        return None
    return (" AND " if all_words else " OR ").join(f'"{w}"' for w in words)


def highlight_spans(text: str, words: tuple[str, ...] | list[str]) -> list[tuple[int, int]]:
    """(start, end) character spans of whole-word, case-insensitive occurrences of `words`
    in `text`: what a snippet or note card should highlight."""
    if not text or not words:
        return []
    pattern = re.compile(r"\b(" + "|".join(re.escape(w) for w in words) + r")\b", re.I)
    return [m.span() for m in pattern.finditer(text)]


_NONSENSE_CENTRES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def nonsense_centre(encoder: EncoderLike) -> np.ndarray:
    """What the model makes of meaningless strings (a unit vector), once per encoder: the
    window's warm start (app/warm_start.py) computes it at launch, so the first search does
    not spend a model run on it."""
    try:
        centre = _NONSENSE_CENTRES.get(encoder)
    except TypeError:  # an encoder that cannot be weakly referenced: computed per Searcher
        centre = None
    if centre is None:
        # an encoder that keeps fixed texts' vectors on disk (indexer/lazy_encoder.py) reads
        # them instead of running the model
        encode = getattr(encoder, "encode_fixed", encoder.encode_texts)
        probes = np.asarray(encode(list(NONSENSE_PROBES)), np.float32)
        mean = probes.mean(axis=0)
        centre = mean / (np.linalg.norm(mean) + 1e-12)
        try:
            _NONSENSE_CENTRES[encoder] = centre
        except TypeError:
            pass
    return centre


class Searcher:
    def __init__(self, library: Library, encoder: EncoderLike) -> None:
        self.library = library
        self.encoder = encoder
        self._background: dict[str | None, np.ndarray] = {}
        self._background_count = -1
        self._nonsense: np.ndarray | None = None
        self._tokenizer_checked = False

    # -- requests ---------------------------------------------------------------------------
    def query_vector(self, terms: list[Term]) -> np.ndarray:
        """Weighted sum of term vectors, normalised (query arithmetic)."""
        total = np.zeros(self.encoder.dim, np.float32)
        texts = [(t.weight, t.text) for t in terms if t.text is not None]
        if texts:
            if not self._tokenizer_checked:
                self.library.check_tokenizer(getattr(self.encoder, "tokenizer_sha256", None))
                self._tokenizer_checked = True
            vecs = self.encoder.encode_texts([text for _, text in texts])
            for (weight, _), v in zip(texts, vecs):
                total += weight * v
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

    def reads_nothing(self, vec: np.ndarray) -> bool:
        """Whether the model makes of this query what it makes of meaningless strings."""
        if self._nonsense is None:
            self._nonsense = nonsense_centre(self.encoder)
        return float(np.dot(vec, self._nonsense)) >= NONSENSE_COS

    def run(self, req: SearchRequest) -> SearchPage:
        """One search, in named steps: the query's terms and vector, the ranked and folded
        results, standouts first, the page."""
        started = time.perf_counter()
        terms = request_terms(req)
        words = keyword_text(terms) if req.mode != "vector" else ""
        vec = self.request_vector(req, terms)
        results = self.ranked_results(req, vec, words)
        ordered, cutoff = standouts_first(results, req.sort)
        counts = self.library.reader().counts()
        return SearchPage(
            ordered, cutoff, (time.perf_counter() - started) * 1000, self.z_stats(vec),
            library_counts={"images": counts["images"], "notes": counts["notes"]},
            query_truncated=self.truncated(terms),
            query_words=tuple(query_words(words)) if words else (),
            text_words=tuple(text_match.query_words(words, _STOPWORDS)) if words else (),
        )

    def request_vector(self, req: SearchRequest, terms: list[Term]) -> np.ndarray:
        """The query as one vector: the file to find similar ones to, plus the terms, moved
        by the results marked more/less like this."""
        vec: np.ndarray | None = None
        if req.similar_to is not None:
            vec = self.library.reader().file_vector(req.similar_to)
            if vec is None:
                raise QueryError("that item is no longer in the library")
        if terms:
            tv = self.query_vector(terms)
            vec = tv if vec is None else (vec + tv) / np.linalg.norm(vec + tv)
        if vec is None:
            raise QueryError("type something to search for, or drop an image")
        if req.positives or req.negatives:
            vec = self.refine(vec, req.positives, req.negatives)
        return vec

    def ranked_results(self, req: SearchRequest, vec: np.ndarray, words: str
                       ) -> list[SearchResult]:
        """The request's k best results by relevance, the item itself left out of "find
        similar", identical copies folded into one."""
        similar = req.similar_to is not None
        results = self.search(words or None, vector=vec, k=req.k + similar, flt=req.flt,
                              mode=req.mode if words else "vector")
        if similar:
            results = [r for r in results if r.file_id != req.similar_to]
        return fold_copies(results[: req.k], self._hashes(results[: req.k]))

    def truncated(self, terms: list[Term]) -> bool:
        """Whether a text term is cut at the model's token window (the model sees its start)."""
        limit = getattr(self.encoder, "max_text_tokens", None)
        if not limit:
            return False
        return any(t.text and self.encoder.token_count(t.text) > limit for t in terms)

    def _hashes(self, results: list[SearchResult]) -> dict[int, str | None]:
        rows = self.library.reader().files_by_ids([r.file_id for r in results])
        return {fid: row.content_hash for fid, row in rows.items()}

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
            pixels = load_image(path, self.encoder.image_size,
                                getattr(self.encoder, "interpolation", "bicubic"),
                                getattr(self.encoder, "resize_mode", "shortest")).pixels
        except DecodeError as exc:
            raise QueryError(f"cannot use {path} as a query: {exc}") from None
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
        """Pictures whose read text holds the query's words, each graded (`text_level`) with
        the matching line as its snippet. Words are taken as typed ("42.50", "RE16")."""
        words = text_match.query_words(text, _STOPWORDS)
        if not words:
            return []
        reader = self.library.reader()
        if not isinstance(reader, OcrCatalogue) or not supports_ocr(reader):
            return []  # a catalogue that keeps no words read in pictures
        hits = reader.ocr_search(words, flt or FileFilter(), k)
        if hits and hits[0].matched == len(words):  # like names: all words, else any
            hits = [h for h in hits if h.matched == len(words)]
        ids = [h.file_id for h in hits]
        files = reader.files_by_ids(ids)
        texts = reader.ocr_texts(ids)
        out = []
        for h in hits:
            f = files.get(h.file_id)
            if f is None:
                continue
            ev = text_match.evidence([ln[0] for ln in texts.get(h.file_id, [])], words)
            out.append(SearchResult(h.file_id, f.path, os.fsdecode(f.path_raw), f.kind, 0.0,
                                    ev.line or h.line, f.taken_at, keyword=True,
                                    text_level=ev.level))
        return out

    def text_marks(self, file_ids: list[int], words: tuple[str, ...] | list[str]
                   ) -> dict[int, list[text_match.Box]]:
        """Where the query's words are in these pictures: per picture whose read text holds
        some, one box (four corners, fractions of the upright picture's width and height) per
        occurrence. `words`: the page's text_words."""
        if not words or not file_ids:
            return {}
        reader = self.library.reader()
        if not isinstance(reader, OcrCatalogue) or not supports_ocr(reader):
            return {}
        texts = reader.ocr_texts(file_ids)
        out = {}
        for fid, lines in texts.items():
            boxes = text_match.marks([(ln[0], ln[2]) for ln in lines], words)
            if boxes:
                out[fid] = boxes
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
        """mode: 'hybrid' (default), 'vector' or 'keyword'. Results carry z, relevance and
        stands_out, ordered by relevance.

        The two rankings run one after the other: running the keyword ranking on a second
        thread while the query is encoded gave p50 33-34 ms against 34-38 ms at 100k items on
        2 cores (within noise; torch already uses both cores), not worth a thread."""
        if mode not in ("hybrid", "vector", "keyword"):
            raise QueryError(f"unknown search mode {mode!r}")
        if vector is None and text is None:
            raise QueryError("nothing to search for")
        vec_results: list[SearchResult] = []
        kw_results: list[SearchResult] = []
        v = vector if vector is not None else self.text_vector(text or "")
        if mode != "keyword":
            vec_results = self.vector_ranking(v, _depth(k) if mode == "hybrid" else k, flt)
        if mode != "vector" and text:
            kw_results = self.keyword_ranking(text, _depth(k) if mode == "hybrid" else k, flt)
            # words read in pictures join the keyword side (OCR; see ocr_ranking)
            kw_results = merge_keyword_rankings(
                kw_results, self.ocr_ranking(text, _depth(k) if mode == "hybrid" else k, flt))
        merged = fuse(vec_results, kw_results)
        return self.calibrate(merged, v, text if mode != "vector" else None, flt)[:k]

    def calibrate(self, results: list[SearchResult], vec: np.ndarray, text: str | None,
                  flt: FileFilter | None) -> list[SearchResult]:
        """Give every result its z, keyword evidence and relevance; order by relevance."""
        reader = self.library.reader()
        stats = {kind: self.z_stats(vec, kind) for kind in ("image", "text")}
        floor = standout_floor(self.similarity_profile(vec, flt, stats), self.library.vectors.count())
        words = query_words(text) if text else []
        levels = reader.keyword_evidence(
            words, [r.file_id for r in results if r.keyword], NEAR_PER_WORD * max(len(words) - 1, 1)
        ) if words else {}
        scored = []
        for r in results:
            score = r.score
            if r.score == 0.0 and r.keyword:  # found by words only: give it a real similarity
                fv = reader.file_vector(r.file_id)
                score = float(fv @ vec) if fv is not None else 0.0
            mu, sd = stats.get(r.kind, stats["image"])
            z = (score - mu) / sd
            level = 5 if r.keyword and text and names_file(text, r.path) else levels.get(r.file_id, -1)
            scored.append(replace(r, score=score, z=z, keyword_level=level))
        doubt_names = names_doubted(scored, floor)
        # a query the model reads as nothing: looks alone never stand out (order is kept)
        looks_cap = STANDOUT_RELEVANCE - 0.01 if self.reads_nothing(vec) else 1.0
        out = []
        for r in scored:
            rel_v = vector_relevance(r.z, floor) * looks_cap
            if r.kind == "text":
                rel_v *= NOTE_VECTOR_WEIGHT
            rel_k = KEYWORD_RELEVANCE.get(r.keyword_level, 0.0)
            if r.kind == "image" and doubt_names and 0 < r.keyword_level < 5:
                rel_k *= NAME_TRUST + (1 - NAME_TRUST) * rel_v
            rel_t = KEYWORD_RELEVANCE.get(r.text_level, 0.0)  # read in the picture: direct
            rel = max(rel_v, rel_k, rel_t)
            matched = tuple(w for w in words if r.keyword and _holds(r, w))
            out.append(replace(r, relevance=rel, stands_out=rel >= STANDOUT_RELEVANCE,
                               matched_terms=matched))
        return sorted(out, key=lambda r: (-r.relevance, -r.fused))

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


def request_terms(req: SearchRequest) -> list[Term]:
    """The request's weighted terms: its text (query arithmetic) and its image, if any."""
    terms = parse_query(req.text) if req.text.strip() else []
    if req.image:
        terms.append(Term(1.0, image=req.image))
    return terms


def standouts_first(results: list[SearchResult], sort: str) -> tuple[list[SearchResult], int]:
    """Results that stand out, then the others (ranking order kept within each group, or
    newest first with sort="date"), and how many stand out."""
    standout = [r for r in results if r.stands_out]
    rest = [r for r in results if not r.stands_out]
    if sort == "date":
        standout, rest = sorted(standout, key=_newest), sorted(rest, key=_newest)
    return standout + rest, len(standout)


def _depth(k: int) -> int:
    """How deep each ranking goes before the fusion picks the top k."""
    return max(k * 3, 50)


def null_floor(n: int) -> float:
    """The z that the best of `n` background items stays under in NULL_QUANTILE of queries
    (Gaussian background): with no break in the profile, only results above it stand out."""
    n = max(int(n), 1)
    return max(NormalDist().inv_cdf(NULL_QUANTILE ** (1.0 / n)), MIN_STANDOUT_Z)


def standout_floor(zs: list[float], n_items: int | None = None) -> float:
    """The z above which results stand out for this query.

    Matches and near misses are usually separated by a break in the similarity profile: a
    step several times wider than the spacing between the matches above it (91 yellow stars at
    z 2.2-2.5, then the first orange star at 1.9). The widest such break decides. A break whose
    upper side is under BREAK_FLOOR_Z must be much sharper (STRONG_BREAK_RATIO). A break after
    the first item alone counts only if that item reaches STANDOUT_Z, and without a break
    STANDOUT_Z decides. The group above the widest break must be one chance rarely makes in a
    library of this size (`chance_of_group` under CHANCE_GROUP_P: two random items at z 2.4
    among 300 are what chance gives); when it is not, only results above the chance level of
    the library size stand out (`null_floor`: the best of N background items is under it in
    95% of queries). `zs`: the profile, in any order; `n_items`: the library's size (the
    profile's length when not given).
    """
    # null_floor as the no-break level was tried: it hid the lone true match of small libraries
    # (tiny-shapes tops out near z 2.6) and the digits' weak matches, so STANDOUT_Z stays there.
    chance = STANDOUT_Z
    top = sorted((z for z in zs if z >= BREAK_LOW_Z), reverse=True)
    below = max((z for z in zs if z < BREAK_LOW_Z), default=None)
    if below is not None:
        top.append(below)  # the step down past the lowest level looked at is a break too
    if not top or top[0] < BREAK_FLOOR_Z:
        return chance
    best_width, floor, group = 0.0, chance, (0, 0.0)
    n = len(zs) if n_items is None else n_items
    for i in range(len(top) - 1):
        if i == 0 and top[0] < chance:
            continue
        width = top[i] - top[i + 1]
        spacing = (top[0] - top[i]) / i if i else 0.0  # mean step among those above
        ratio = BREAK_RATIO if top[i] >= BREAK_FLOOR_Z else STRONG_BREAK_RATIO
        if width >= BREAK_MIN_Z and width >= ratio * spacing and width > best_width:
            best_width, floor, group = width, top[i] - width / 2, (i + 1, top[i])  # mid-break
    if best_width and chance_of_group(*group, n) >= CHANCE_GROUP_P:
        return max(chance, null_floor(n))  # its group is what chance alone makes
    return floor


def names_file(text: str, path: str) -> bool:
    """Whether the query is the file's name, with or without its extension, word for word
    ("IMG_0042.jpg", "img 0042", "Blue-Square-7"): the user is naming that file."""
    words = name_terms(text).lower().split()
    name = os.path.basename(path)
    return bool(words) and words in (name_terms(name).lower().split(),
                                     name_terms(os.path.splitext(name)[0]).lower().split())


def names_doubted(results: list[SearchResult], floor: float) -> bool:
    """Whether a picture's name alone is doubtful evidence for this query: the model knows
    what the query looks like, shown by its agreeing with at least NAME_CONFIRM_SHARE of the
    pictures whose names hold the query (phrase or close words) -- then a picture so named
    that does not look like it is misnamed ("blue-square-7.jpg" showing a red circle). When
    the model does not recognise the named pictures ("invoice_2023.png": a word it cannot
    see), the name is the evidence and is trusted whole."""
    named = [r for r in results if r.kind == "image"
             and KEYWORD_RELEVANCE.get(r.keyword_level, 0.0) >= STANDOUT_RELEVANCE]
    if not named:
        return False
    confirmed = sum(r.z >= floor for r in named)
    by_looks = sum(r.kind == "image" and r.z >= floor for r in results) - confirmed
    return confirmed >= NAME_CONFIRM_SHARE * len(named) or by_looks > len(named)


def chance_of_group(m: int, z: float, n: int) -> float:
    """How likely `m` or more of `n` items reach `z` by chance alone (each item's z a standard
    normal draw, Poisson tail): a group above a break is only a group of matches when chance
    rarely makes one as large, as high, in a library of this size."""
    lam = max(n, 1) * (1.0 - NormalDist().cdf(z))
    if lam <= 0.0:
        return 0.0
    below = sum(math.exp(k * math.log(lam) - lam - math.lgamma(k + 1)) for k in range(m))
    return max(0.0, 1.0 - below)


def vector_relevance(z: float, floor: float) -> float:
    """Logistic in z around the floor: 0.5 at the edge of standing out, for any query."""
    return 1.0 / (1.0 + math.exp(-(z - floor) / REL_SCALE))


def _holds(r: SearchResult, word: str) -> bool:
    hay = f"{r.path} {r.snippet or ''}".lower()
    return re.search(r"\b" + re.escape(word) + r"\b", hay) is not None


def _newest(r: SearchResult) -> float:
    return -(r.taken_at or 0.0)


def fold_copies(results: list[SearchResult], hashes: dict[int, str | None]) -> list[SearchResult]:
    """Identical files (same content hash) become one result, the best-ranked, with `copies`
    and the other paths."""
    first: dict[str, int] = {}
    out: list[SearchResult] = []
    for r in results:
        h = hashes.get(r.file_id)
        if h is None or h not in first:
            if h is not None:
                first[h] = len(out)
            out.append(r)
            continue
        i = first[h]
        out[i] = replace(out[i], copies=out[i].copies + 1, copy_paths=out[i].copy_paths + (r.path,))
    return out


def fuse(vec: list[SearchResult], kw: list[SearchResult]) -> list[SearchResult]:
    """Union of the two rankings; a file keeps its cosine score, gains the keyword flag and
    snippet, and a reciprocal-rank score that only breaks ties of equal relevance."""
    merged: dict[int, SearchResult] = {}
    for rank, r in enumerate(vec):
        merged[r.file_id] = replace(r, fused=1.0 / (RRF_K + rank + 1))
    for rank, r in enumerate(kw):
        bonus = 1.0 / (RRF_K + rank + 1)
        if r.file_id in merged:
            m = merged[r.file_id]
            merged[r.file_id] = replace(
                m, fused=m.fused + bonus, keyword=True, snippet=r.snippet or m.snippet,
                text_level=max(m.text_level, r.text_level),
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
                                            snippet=r.snippet or m.snippet,
                                            text_level=max(m.text_level, r.text_level))
    return sorted(merged.values(), key=lambda r: -r.fused)
