"""Small stand-ins for the model, so store/index logic is tested in milliseconds.

The fake image vector is the image's mean colour (so similar colours are similar); the fake
text vector is a hashed bag of words. Both are unit length like the real encoder's.
"""
from __future__ import annotations

import hashlib
import re

import numpy as np


class FakeEncoder:
    device = "cpu"

    def __init__(self, dim: int = 16, image_size: int = 32, max_tokens: int = 75) -> None:
        self.dim = dim
        self.image_size = image_size
        self.max_text_tokens = max_tokens
        self.images_encoded = 0
        self.texts_encoded = 0

    def encode_images(self, pixels: np.ndarray) -> np.ndarray:
        self.images_encoded += len(pixels)
        out = np.zeros((len(pixels), self.dim), np.float32)
        means = pixels.reshape(len(pixels), -1, 3).mean(axis=1) / 255.0
        out[:, :3] = means
        out[:, 3] = 0.05
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        self.texts_encoded += len(texts)
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, t in enumerate(texts):
            for w in re.findall(r"\w+", t.lower()):
                h = int(hashlib.md5(w.encode()).hexdigest(), 16)
                out[i, 4 + h % (self.dim - 4)] += 1.0
            out[i, 3] = 0.05
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def token_count(self, text: str) -> int:
        return len(re.findall(r"\w+|[^\w\s]", text))
