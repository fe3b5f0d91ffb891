"""Layer 2b: word and character n-gram logistic regressions for the crisis signals (runtime: numpy only).

Why a second model beside the sentence-embedding classifier: leave-one-author-out runs showed the embedding
model alone finds only ~0.3-0.45 of an unseen author's suicide-risk messages at a 1.5-3% false-alarm budget,
while n-gram models pick up the words people actually use ("unalive", "kms", "no point living", misspelt
"sucide") that a small sentence encoder smooths away. Averaging the three (embedding, word n-grams,
character n-grams) raised unseen-author suicide recall at the same budget by roughly half (README numbers).

The vectoriser is ours, used identically by training (``train.py``) and at runtime: lower-cased word uni- and
bigrams, and character 2-5-grams inside word boundaries; sublinear term frequency times smoothed idf, each block
L2-normalised. The artifact (``guardrails/classifier/lexical_crisis.npz``) holds the vocabularies, idf, and one
weight row per label; its sha256 is recorded in the signal classifier artifact.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ketai.errors import ContentError

LEXICAL_ARTIFACT_NAME = "lexical_crisis.npz"
_WORD = re.compile(r"(?u)\b\w\w+\b")
_SPACES = re.compile(r"\s+")
CHAR_MIN, CHAR_MAX = 2, 5
FloatArray = npt.NDArray[np.float64]


def word_terms(text: str) -> list[str]:
    words = _WORD.findall(text.lower())
    return words + [f"{a} {b}" for a, b in pairwise(words)]


def char_terms(text: str) -> list[str]:
    """Character n-grams of each space-padded word (n-grams never cross a word boundary)."""
    terms: list[str] = []
    for word in _SPACES.sub(" ", text.lower()).split():
        padded = f" {word} "
        for n in range(CHAR_MIN, CHAR_MAX + 1):
            if len(padded) < n:
                break
            terms.extend(padded[i : i + n] for i in range(len(padded) - n + 1))
    return terms


@dataclass(frozen=True)
class Block:
    """One vectoriser block: vocabulary (term -> column) and idf per column."""

    vocabulary: dict[str, int]
    idf: FloatArray

    def vector(self, terms: Iterable[str]) -> tuple[npt.NDArray[np.int64], FloatArray]:
        counts = Counter(t for t in terms if t in self.vocabulary)
        if not counts:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
        columns = np.array([self.vocabulary[t] for t in counts], dtype=np.int64)
        values = np.array([1.0 + math.log(c) for c in counts.values()], dtype=np.float64) * self.idf[columns]
        norm = float(np.sqrt((values**2).sum()))
        return columns, values / norm if norm > 0 else values

    @classmethod
    def fit(cls, documents: list[list[str]], min_df: int, max_features: int | None) -> Block:
        df: Counter[str] = Counter()
        for terms in documents:
            df.update(set(terms))
        kept = sorted((t for t, c in df.items() if c >= min_df), key=lambda t: (-df[t], t))
        if max_features is not None:
            kept = kept[:max_features]
        kept.sort()
        n = len(documents)
        idf = np.array([math.log((1 + n) / (1 + df[t])) + 1.0 for t in kept], dtype=np.float64)
        return cls({t: i for i, t in enumerate(kept)}, idf)


@dataclass(frozen=True)
class LexicalModel:
    labels: list[str]
    words: Block
    chars: Block
    word_weights: FloatArray
    """(labels, word vocabulary)"""
    char_weights: FloatArray
    word_intercepts: FloatArray
    char_intercepts: FloatArray

    def probabilities(self, text: str) -> dict[str, float]:
        """Per label: the mean of the word-model and character-model probabilities."""
        wc, wv = self.words.vector(word_terms(text))
        cc, cv = self.chars.vector(char_terms(text))
        word_logit = self.word_weights[:, wc] @ wv + self.word_intercepts
        char_logit = self.char_weights[:, cc] @ cv + self.char_intercepts
        mean = (_sigmoid(word_logit) + _sigmoid(char_logit)) / 2.0
        return {label: float(p) for label, p in zip(self.labels, mean, strict=True)}

    def matrix(self, texts: list[str]) -> FloatArray:
        """Probabilities as a (texts, labels) array, columns in ``self.labels`` order."""
        rows = [self.probabilities(t) for t in texts]
        return np.array([[row[label] for label in self.labels] for row in rows], dtype=np.float64).reshape(
            len(texts), len(self.labels)
        )

    def save(self, path: Path) -> None:
        with path.open("wb") as handle:
            np.savez_compressed(
                handle,
                labels=np.array(self.labels),
                word_terms=np.array(sorted(self.words.vocabulary, key=self.words.vocabulary.__getitem__)),
                word_idf=self.words.idf.astype(np.float32),
                char_terms=np.array(sorted(self.chars.vocabulary, key=self.chars.vocabulary.__getitem__)),
                char_idf=self.chars.idf.astype(np.float32),
                word_weights=self.word_weights.astype(np.float16),
                char_weights=self.char_weights.astype(np.float16),
                word_intercepts=self.word_intercepts,
                char_intercepts=self.char_intercepts,
            )

    @classmethod
    def load(cls, path: Path) -> LexicalModel:
        try:
            with np.load(path, allow_pickle=False) as data:
                words = Block(
                    {str(t): i for i, t in enumerate(data["word_terms"])}, data["word_idf"].astype(np.float64)
                )
                chars = Block(
                    {str(t): i for i, t in enumerate(data["char_terms"])}, data["char_idf"].astype(np.float64)
                )
                model = cls(
                    labels=[str(x) for x in data["labels"]],
                    words=words,
                    chars=chars,
                    word_weights=data["word_weights"].astype(np.float64),
                    char_weights=data["char_weights"].astype(np.float64),
                    word_intercepts=data["word_intercepts"].astype(np.float64),
                    char_intercepts=data["char_intercepts"].astype(np.float64),
                )
        except (OSError, KeyError, ValueError) as exc:
            raise ContentError(f"{path}: cannot read lexical model ({exc})") from exc
        if model.word_weights.shape != (
            len(model.labels),
            len(words.vocabulary),
        ) or model.char_weights.shape != (
            len(model.labels),
            len(chars.vocabulary),
        ):
            raise ContentError(f"{path}: lexical model weights do not match its vocabularies; retrain")
        return model


def _sigmoid(x: FloatArray) -> FloatArray:
    result: FloatArray = 1.0 / (1.0 + np.exp(-x))
    return result
