"""Fit the word and character n-gram crisis models (``ketai.guardrails.lexical``); used by ``train.py``.

scikit-learn and scipy are needed only here (dev dependencies). Same solver and seed as the embedding heads.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ketai.guardrails.lexical import Block, LexicalModel, char_terms, word_terms

WORD_MIN_DF = 2
CHAR_MIN_DF = 2
CHAR_MAX_FEATURES = 30000
"""Most frequent character n-grams kept (the artifact stays ~1 MB; more columns did not help out of author)."""
LEXICAL_C = 4.0
SEED = 20261127


def _matrix(block: Block, documents: list[list[str]]) -> object:
    from scipy.sparse import csr_matrix

    indptr, indices, values = [0], [], []
    for terms in documents:
        columns, weights = block.vector(terms)
        indices.extend(columns.tolist())
        values.extend(weights.tolist())
        indptr.append(len(indices))
    return csr_matrix((values, indices, indptr), shape=(len(documents), len(block.vocabulary)))


def _fit_rows(x: object, y: npt.NDArray[np.int8]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    from sklearn.linear_model import LogisticRegression

    weights = np.zeros((y.shape[1], x.shape[1]), dtype=np.float64)  # type: ignore[attr-defined]
    intercepts = np.full(y.shape[1], -20.0, dtype=np.float64)
    for j in range(y.shape[1]):
        if y[:, j].sum() == 0:
            continue
        model = LogisticRegression(
            C=LEXICAL_C, class_weight="balanced", solver="liblinear", random_state=SEED, max_iter=2000
        )
        model.fit(x, y[:, j])
        weights[j], intercepts[j] = model.coef_[0], model.intercept_[0]
    return weights, intercepts


def fit_lexical(texts: list[str], y: npt.NDArray[np.int8], labels: list[str]) -> LexicalModel:
    word_docs = [word_terms(t) for t in texts]
    char_docs = [char_terms(t) for t in texts]
    words = Block.fit(word_docs, WORD_MIN_DF, None)
    chars = Block.fit(char_docs, CHAR_MIN_DF, CHAR_MAX_FEATURES)
    word_weights, word_intercepts = _fit_rows(_matrix(words, word_docs), y)
    char_weights, char_intercepts = _fit_rows(_matrix(chars, char_docs), y)
    return LexicalModel(labels, words, chars, word_weights, char_weights, word_intercepts, char_intercepts)
