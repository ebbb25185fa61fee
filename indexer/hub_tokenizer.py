"""A model's own Hugging Face tokenizer (tokenizer.json), without torch or transformers.

Models whose text tower is not CLIP's (SigLIP i18n: a 250k-piece SentencePiece vocabulary) are
tokenized by open_clip's `HFTokenizer`, which cleans the text, then calls a `transformers`
tokenizer with `max_length=context_length, padding="max_length", truncation=True`. Importing
transformers (and torch, for the LongTensor it returns) costs seconds per query, so this reads
the same tokenizer.json with the `tokenizers` library (which transformers' fast tokenizers run
on) and does the same steps: open_clip's cleaning, the file's own normaliser, pre-tokenizer,
model and post-processor (which appends the end token), truncation to the window keeping the
end token, right padding with the pad token named in the tokenizer's config.
bench/hub_tokenizer_vs_transformers.py compares the ids with open_clip's own HFTokenizer (needs
transformers; identical with 5.23.0); tests/test_multilingual.py checks the cleaning against
open_clip's, the window layout, and the vectors.

The files come from the model's Hub repository at the spec's pinned revision and are checked
against the sha256 recorded when they were first downloaded (indexer/tokenizer_files.py).
"""
from __future__ import annotations

import html
import json
import string
from pathlib import Path

import numpy as np

TOKENIZER_JSON = "tokenizer.json"
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def _basic_clean(text: str) -> str:
    """open_clip's `basic_clean`: ftfy, HTML unescape twice, strip."""
    import ftfy

    text = ftfy.fix_text(text)
    return html.unescape(html.unescape(text)).strip()


def _canonicalize(text: str) -> str:
    """open_clip's `canonicalize_text` (from big_vision): underscores to spaces, ASCII
    punctuation removed, lower case, whitespace collapsed."""
    text = text.replace("_", " ").translate(_PUNCTUATION).lower()
    return " ".join(text.split()).strip()


CLEANERS = {
    "canonicalize": lambda t: _canonicalize(_basic_clean(t)),
    "lower": lambda t: " ".join(_basic_clean(t).split()).strip().lower(),
    "whitespace": lambda t: " ".join(_basic_clean(t).split()).strip(),
}


class TokenizerFilesError(Exception):
    """The tokenizer files can't be read as a tokenizer (damaged, or not the expected kind)."""


def _special(config: dict, key: str) -> str | None:
    value = config.get(key)
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


class HubTokenizer:
    """Same ids as open_clip's `HFTokenizer` for the files in `folder` (numpy, not torch)."""

    def __init__(self, folder: Path, context_length: int, clean: str = "whitespace") -> None:
        from tokenizers import Tokenizer

        folder = Path(folder)
        try:
            raw = (folder / TOKENIZER_JSON).read_text("utf-8")
            config: dict = {}
            for name in ("tokenizer_config.json", "special_tokens_map.json"):
                path = folder / name
                if path.is_file():
                    config.update({k: v for k, v in json.loads(path.read_text("utf-8")).items()
                                   if v is not None})
            # parsed once: a 250k-piece vocabulary takes over a second of CPU to read
            self._tok = Tokenizer.from_str(raw)
        except Exception as e:  # OSError, bad JSON, or the tokenizers library's own errors
            raise TokenizerFilesError(f"the tokenizer files in {folder} can't be read ({e})") \
                from None
        self.context_length = context_length
        self.files_sha256: dict[str, str] | None = None  # set by whoever checked the files
        self._clean = CLEANERS[clean]
        self._tok.no_truncation()  # done per call below, as the library itself would do it
        self._tok.no_padding()
        pad = _special(config, "pad_token")
        pad_id = self._tok.token_to_id(pad) if pad else None
        if pad is None or pad_id is None:
            raise TokenizerFilesError(f"the tokenizer in {folder} names no usable pad token")
        self.pad_token = pad
        self.pad_token_id = pad_id
        #: tokens the post-processor adds to one text (SigLIP: the end token only)
        self.special_tokens = self._tok.num_special_tokens_to_add(False)

    @property
    def max_text_tokens(self) -> int:
        """Tokens of text that fit in the window beside the special tokens."""
        return self.context_length - self.special_tokens

    def clean(self, text: str) -> str:
        return self._clean(text)

    def token_to_id(self, token: str) -> int | None:
        return self._tok.token_to_id(token)

    def encode(self, text: str) -> list[int]:
        """Ids of `text` after open_clip's cleaning, without special tokens, not truncated."""
        return self._tok.encode(self._clean(text), add_special_tokens=False).ids

    def __call__(self, texts: str | list[str], context_length: int | None = None) -> np.ndarray:
        """int64 [N, context_length]: ids, end token, padding; too long -> cut, end kept."""
        if isinstance(texts, str):
            texts = [texts]
        if context_length not in (None, self.context_length):
            raise ValueError(f"this tokenizer pads to {self.context_length} tokens, "
                             f"not {context_length}")
        out = np.empty((len(texts), self.context_length), dtype=np.int64)
        encs = self._tok.encode_batch([self._clean(t) for t in texts], add_special_tokens=False)
        # transformers' `max_length=…, padding="max_length", truncation=True`, step by step as
        # the tokenizers library does it: cut the text to leave room for the special tokens,
        # add them (the post-processor), pad on the right
        for row, enc in enumerate(encs):
            enc.truncate(self.max_text_tokens)
            enc = self._tok.post_process(enc, None, True)
            enc.pad(self.context_length, direction="right", pad_id=self.pad_token_id,
                    pad_token=self.pad_token)
            out[row] = enc.ids
        return out
