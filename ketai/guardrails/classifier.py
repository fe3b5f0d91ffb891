"""Layer 2: one-vs-rest logistic regression over sentence embeddings (runtime: numpy only).

The artifact ``guardrails/classifier/signal_classifier.json`` is written by
``python -m ketai.guardrails.train`` (scikit-learn, fixed seed) and holds weights, intercepts, per-signal
thresholds chosen on ``dev.jsonl``, the sha256 of the training data and the training date. Features are
the embedding of the screened text (normalised, idioms replaced) plus one-hot phase and role, so the
model can learn that the same words mean different things at peak. An extra label, ``level_emergency``,
says whether the message needs the emergency level; it only raises signals already found.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ketai.embeddings import DIMENSIONS, MODEL_ID, BundledEmbedder
from ketai.errors import ContentError
from ketai.guardrails.schema import PhaseKey, phase_key
from ketai.models import Phase, Role

ARTIFACT_NAME = "signal_classifier.json"
PHASE_KEYS: tuple[PhaseKey, ...] = (
    "pre_session", "dosing", "peak", "integration", "complete", "safety_hold", "aborted", "outside",
)  # fmt: skip
ROLE_KEYS: tuple[str, ...] = ("patient", "companion")
EMERGENCY_LABEL = "level_emergency"
FloatArray = npt.NDArray[np.float32]


class ClassifierArtifact(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    version: int = Field(ge=1)
    reviewed_by: str
    embedding_model: str
    trained_at: datetime
    seed: int
    data_files: dict[str, str]
    """Training/threshold file name -> sha256 of its bytes at training time."""
    phase_keys: list[str]
    role_keys: list[str]
    labels: list[str]
    """The 15 signal names, plus ``level_emergency`` (the message needs the emergency level)."""
    weights: list[list[float]]
    intercepts: list[float]
    thresholds: dict[str, float]
    c: float
    metrics: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _shapes(self) -> ClassifierArtifact:
        width = DIMENSIONS + len(self.phase_keys) + len(self.role_keys)
        if len(self.weights) != len(self.labels) or len(self.intercepts) != len(self.labels):
            raise ValueError("weights/intercepts must have one row per label")
        if any(len(row) != width for row in self.weights):
            raise ValueError(f"each weight row must have {width} values")
        return self


def data_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def context_features(phase: Phase | None, role: Role | str) -> FloatArray:
    key = phase_key(phase)
    role_value = role.value if isinstance(role, Role) else role
    phase_part = [1.0 if key == k else 0.0 for k in PHASE_KEYS]
    role_part = [1.0 if role_value == k else 0.0 for k in ROLE_KEYS]
    return np.array(phase_part + role_part, dtype=np.float32)


class SignalClassifier:
    def __init__(self, artifact: ClassifierArtifact, embedder: BundledEmbedder) -> None:
        if artifact.embedding_model != MODEL_ID:
            raise ContentError(
                f"classifier was trained on {artifact.embedding_model}, runtime has {MODEL_ID}"
            )
        if tuple(artifact.phase_keys) != PHASE_KEYS or tuple(artifact.role_keys) != ROLE_KEYS:
            raise ContentError("classifier feature layout does not match this version of KetAI; retrain it")
        self.artifact = artifact
        self.embedder = embedder
        self.labels = list(artifact.labels)
        self.weights = np.array(artifact.weights, dtype=np.float32).T  # (features, labels)
        self.intercepts = np.array(artifact.intercepts, dtype=np.float32)
        self.thresholds = np.array(
            [artifact.thresholds.get(label, 1.01) for label in self.labels], dtype=np.float32
        )

    @classmethod
    def load(cls, path: Path, embedder: BundledEmbedder) -> SignalClassifier:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            artifact = ClassifierArtifact.model_validate(raw)
        except (OSError, json.JSONDecodeError) as exc:
            raise ContentError(f"{path}: cannot read classifier artifact ({exc})") from exc
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            raise ContentError(f"{path}: field {field}: {first['msg']}") from exc
        return cls(artifact, embedder)

    def probabilities(self, texts: list[str], contexts: list[FloatArray]) -> FloatArray:
        embeddings = self.embedder.embed(texts)
        features = np.hstack([embeddings, np.vstack(contexts)]).astype(np.float32)
        logits = features @ self.weights + self.intercepts
        probs: FloatArray = (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)
        return probs

    def predict(self, text: str, phase: Phase | None, role: Role) -> dict[str, float]:
        """Labels (signal names, ``level_emergency``) whose probability reaches their threshold."""
        probs = self.probabilities([text], [context_features(phase, role)])[0]
        return {
            label: float(p) for label, p, t in zip(self.labels, probs, self.thresholds, strict=True) if p >= t
        }
