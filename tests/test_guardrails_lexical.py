"""The word / character n-gram crisis models: our own vectoriser, the shipped artifact, and how it blends in."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ketai.content.paths import content_dir
from ketai.embeddings import shared_embedder
from ketai.errors import ContentError
from ketai.guardrails.classifier import ARTIFACT_NAME, ClassifierArtifact, SignalClassifier, data_sha256
from ketai.guardrails.lexical import CHAR_MAX, CHAR_MIN, Block, LexicalModel, char_terms, word_terms
from ketai.guardrails.train_lexical import fit_lexical
from ketai.models import Role

FOLDER = content_dir("guardrails") / "classifier"


def test_word_terms_are_unigrams_then_adjacent_bigrams() -> None:
    assert word_terms("I can't see the POINT") == [
        "can", "see", "the", "point", "can see", "see the", "the point",
    ]  # fmt: skip


def test_char_terms_pad_each_word_and_never_cross_words() -> None:
    terms = char_terms("kms now")
    assert " k" in terms and "ms " in terms and " kms " in terms
    assert not any("s n" in t for t in terms)


@given(st.text(max_size=200))
def test_char_terms_lengths_stay_in_range(text: str) -> None:
    terms = char_terms(text)
    assert all(CHAR_MIN <= len(t) <= CHAR_MAX for t in terms)
    assert all(" " not in t.strip(" ") for t in terms)


@given(
    st.lists(st.sampled_from(["die", "tonight", "pills", "walk", "tea", "end it"]), min_size=1, max_size=12)
)
def test_block_vectors_are_unit_length_or_empty(words: list[str]) -> None:
    docs = [word_terms(" ".join(words)), word_terms("tea and a walk"), word_terms("pills tonight")]
    block = Block.fit(docs, min_df=1, max_features=None)
    columns, values = block.vector(word_terms(" ".join(words)))
    assert len(columns) == len(set(columns.tolist()))
    assert math.isclose(float(np.sqrt((values**2).sum())), 1.0, rel_tol=1e-9)
    empty_columns, _ = block.vector(["never-seen-term"])
    assert len(empty_columns) == 0


def test_max_features_keeps_the_most_frequent_terms() -> None:
    docs = [["a", "b"], ["a", "c"], ["a", "b"]]
    block = Block.fit(docs, min_df=1, max_features=2)
    assert set(block.vocabulary) == {"a", "b"}
    assert block.idf[block.vocabulary["a"]] < block.idf[block.vocabulary["b"]]


def test_fit_save_load_round_trip_gives_the_same_probabilities(tmp_path: Path) -> None:
    texts = [
        "i want to end it tonight", "i have saved my pills to end it", "no point living anymore",
        "lovely walk by the river", "the tea was nice", "music was calm and i feel fine",
    ]  # fmt: skip
    y = np.array([[1], [1], [1], [0], [0], [0]], dtype=np.int8)
    model = fit_lexical(texts, y, ["suicide_risk"])
    path = tmp_path / "lexical.npz"
    model.save(path)
    loaded = LexicalModel.load(path)
    before = model.matrix(["thinking i might end it", "a calm walk"])
    after = loaded.matrix(["thinking i might end it", "a calm walk"])
    assert np.allclose(before, after, atol=1e-3)
    assert before[0, 0] > before[1, 0]


def test_a_damaged_artifact_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.npz"
    path.write_bytes(b"not a zip file")
    with pytest.raises(ContentError, match="cannot read lexical model"):
        LexicalModel.load(path)


def test_shipped_lexical_model_matches_the_classifier_artifact() -> None:
    artifact = ClassifierArtifact.model_validate(
        json.loads((FOLDER / ARTIFACT_NAME).read_text(encoding="utf-8"))
    )
    assert artifact.lexical_model is not None and artifact.lexical_weight > 0
    path = FOLDER / artifact.lexical_model
    assert data_sha256(path) == artifact.lexical_sha256, (
        "lexical model changed: python -m ketai.guardrails.train"
    )
    assert path.stat().st_size < 1_000_000
    model = LexicalModel.load(path)
    assert set(model.labels) <= set(artifact.labels)
    assert "suicide_risk" in model.labels


def test_lexical_model_reads_slang_the_same_way_at_runtime() -> None:
    """Texting shorthand the sentence encoder smooths away still scores as risk; an everyday sentence does not."""
    model = LexicalModel.load(FOLDER / "lexical_crisis.npz")
    risky = model.probabilities("honestly might just unalive myself tonight, im done")
    calm = model.probabilities("we watched a film and had soup, she is asleep now")
    assert risky["suicide_risk"] > 0.5 > calm["suicide_risk"]


def test_classifier_blends_the_lexical_scores_into_their_labels_only() -> None:
    classifier = SignalClassifier.load(FOLDER / ARTIFACT_NAME, shared_embedder())
    assert classifier.lexical is not None
    from ketai.guardrails.classifier import context_features

    text, context = "ive decided, tonight after everyone is asleep", context_features(None, Role.PATIENT)
    with_lexical = classifier.scores([text], [context])[0]
    lexical, classifier.lexical = classifier.lexical, None
    try:
        without = classifier.scores([text], [context])[0]
    finally:
        classifier.lexical = lexical
    touched = classifier.lexical_columns
    untouched = [i for i in range(len(classifier.labels)) if i not in touched]
    assert np.allclose(with_lexical[untouched], without[untouched])
    assert not np.allclose(with_lexical[touched], without[touched])
