"""Output policy, layer 2: a linear classifier over draft-reply embeddings (runtime: numpy only).

Regexes catch the unsafe drafts they were written for; free text needs a second look. This one-vs-rest
logistic regression names which output rule a draft breaks (dose advice, medication advice, diagnosis,
reassurance, efficacy claim, minimising risk, permission for an unsafe activity). Features: a vector of the
draft (the artifact's ``features``: the full sentence embedding, or the pooled output of the bundled model's layer
``STATE_LAYER``, which runs half the network) plus one-hot phase and assessment level. Trained only on our
training drafts by ``python -m ketai.guardrails.train_output`` with thresholds from out-of-writer scores.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
from pydantic import ValidationError, model_validator

from ketai.embeddings import DIMENSIONS, MODEL_ID, BundledEmbedder, mean_pooled
from ketai.errors import ContentError
from ketai.guardrails.classifier import PHASE_KEYS, LinearHeadArtifact
from ketai.guardrails.schema import phase_key
from ketai.models import EscalationLevel, Phase

OUTPUT_ARTIFACT_NAME = "output_classifier.json"
LEVEL_KEYS: tuple[str, ...] = tuple(level.value for level in EscalationLevel)
OUTPUT_RULES: tuple[str, ...] = (
    "dose_advice", "medication_advice", "diagnosis", "reassurance", "efficacy_claim", "minimising_risk",
    "unsafe_activity_permission",
)  # fmt: skip
CRISIS_ANSWER = "crisis_answer"
"""Not a rule: an extra column, "does this draft answer a crisis?". Read only for drafts screened without their
assessment, where it stands in for the level: a crisis answer naming neither 988 nor 911 breaks
``missing_crisis_text`` (rule 25 in ``docs/GUARDRAILS_HISTORY.md``)."""

FloatArray = npt.NDArray[np.float32]
DraftFeatures = Literal["embedding", "state"]
"""``embedding``: the six-layer sentence embedding; ``state``: the mean-pooled, L2-normalised output of layer
``STATE_LAYER`` (the screen's fine-tuned layers start from the same cut)."""


def draft_vectors(
    embedder: BundledEmbedder, texts: list[str], kind: DraftFeatures, batch: int = 32
) -> FloatArray:
    """One 384-d vector per draft, of the kind the classifier was trained on."""
    if kind == "embedding":
        return embedder.embed(texts)
    parts = [np.zeros((0, DIMENSIONS), dtype=np.float32)]
    for start in range(0, len(texts), batch):
        states = embedder.states(texts[start : start + batch])
        parts.append(mean_pooled(states.hidden, states.mask))
    return np.concatenate(parts)


class OutputClassifierArtifact(LinearHeadArtifact):
    level_keys: list[str]
    features: DraftFeatures = "embedding"
    unknown_level: bool = False
    """Trained with an unknown-level copy of the drafts (level part of the context all zeros), so a draft screened
    without its assessment can be read without pretending the level was none."""
    beta: float = 1.5
    """The F-beta its thresholds maximise out of writer (``train_output --beta``)."""

    @model_validator(mode="after")
    def _shapes(self) -> OutputClassifierArtifact:
        width = DIMENSIONS + len(self.phase_keys) + len(self.level_keys)
        if len(self.weights) != len(self.labels) or any(len(row) != width for row in self.weights):
            raise ValueError(f"weights must be one row of {width} values per label")
        return self


def output_context(phase: Phase | None, level: EscalationLevel | None) -> FloatArray:
    """Phase one-hot, then level one-hot (all zeros: the level is unknown)."""
    key = phase_key(phase)
    values = [1.0 if key == k else 0.0 for k in PHASE_KEYS] + [
        1.0 if level is not None and level.value == k else 0.0 for k in LEVEL_KEYS
    ]
    return np.array(values, dtype=np.float32)


class OutputClassifier:
    def __init__(self, artifact: OutputClassifierArtifact, embedder: BundledEmbedder) -> None:
        if artifact.embedding_model != MODEL_ID or tuple(artifact.phase_keys) != PHASE_KEYS:
            raise ContentError("output classifier does not match this version of KetAI; retrain it")
        if tuple(artifact.level_keys) != LEVEL_KEYS:
            raise ContentError("output classifier level layout changed; retrain it")
        self.artifact = artifact
        self.embedder = embedder
        self.weights = np.array(artifact.weights, dtype=np.float32).T
        self.intercepts = np.array(artifact.intercepts, dtype=np.float32)
        self.thresholds = np.array(
            [artifact.thresholds.get(k, 1.01) for k in artifact.labels], dtype=np.float32
        )

    @classmethod
    def load(cls, path: Path, embedder: BundledEmbedder) -> OutputClassifier:
        try:
            artifact = OutputClassifierArtifact.model_validate(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError) as exc:
            raise ContentError(f"{path}: cannot read output classifier ({exc})") from exc
        except ValidationError as exc:
            first = exc.errors()[0]
            raise ContentError(
                f"{path}: field {'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
            ) from exc
        return cls(artifact, embedder)

    def probabilities(self, text: str, phase: Phase | None, level: EscalationLevel | None) -> FloatArray:
        vector = draft_vectors(self.embedder, [text], self.artifact.features)[0]
        features = np.hstack([vector, output_context(phase, level)])
        logits = features @ self.weights + self.intercepts
        probs: FloatArray = (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)
        return probs

    def predict_blind(self, text: str, phase: Phase | None) -> dict[str, float]:
        """Labels for a draft screened without its input assessment (a ``ketai screen`` contract line): read with
        the unknown-level context when the artifact was trained with it, else at level none."""
        return self.predict(text, phase, None if self.artifact.unknown_level else EscalationLevel.NONE)

    def predict(self, text: str, phase: Phase | None, level: EscalationLevel | None) -> dict[str, float]:
        probs = self.probabilities(text, phase, level)
        labels = self.artifact.labels
        return {label: float(p) for label, p, t in zip(labels, probs, self.thresholds, strict=True) if p >= t}
