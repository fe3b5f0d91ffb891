"""Layer 2: fine-tuned last MiniLM layers with a small neural head, blended with a kNN vote and n-gram models
(runtime: numpy only).

The artifact ``guardrails/classifier/signal_classifier.json`` is written by ``python -m ketai.guardrails.train``
(torch and scikit-learn, fixed seed) and holds per-signal thresholds chosen on out-of-author scores, the sha256 of
the training data and of every file beside it (the tuned layers in ``signal_layers.npz``, the head's weights in
``signal_head.npz``, the kNN bank, the n-gram models), reference scores the runtime must reproduce, and the
training date. The bundled model's first three layers run once per message (a session cut after them); the last
three run with the classifier's own fine-tuned weights (``tuned_layers.py``), whose sentence vector feeds one hidden
ReLU layer and a sigmoid per label. The kNN vote compares the third layer's pooled output with the training
sentences'. Out of author this found 0.79 of suicide-risk messages at a
3% benign budget against 0.54 for networks over the frozen sentence vector (``train.py`` has the numbers).
Features are the tuned vector of the screened text (normalised, idioms replaced) plus one-hot phase and role, so
the model can learn that the same words mean different things at peak. An extra label, ``level_emergency``, says
whether the message needs the emergency level; it only raises signals already found.

The rules and this classifier are second opinions of each other, with bars chosen out of author in ``train.py``:
a crisis reading the classifier is very sure of overrides the rules' context veto (``veto_override``), and a
crisis signal only the rules found that the classifier all but rules out stays at monitor (``rule_demotion``)."""

from __future__ import annotations

import hashlib
import json
import re
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ketai.embeddings import DIMENSIONS, MODEL_ID, BundledEmbedder
from ketai.errors import ContentError
from ketai.guardrails.encoder import Encoded, SignalEncoder, in_background
from ketai.guardrails.lexical import LexicalModel
from ketai.guardrails.schema import PhaseKey, phase_key
from ketai.guardrails.tuned_layers import TunedLayers
from ketai.models import Phase, Role, SignalName

ARTIFACT_NAME = "signal_classifier.json"
PHASE_KEYS: tuple[PhaseKey, ...] = (
    "pre_session", "dosing", "peak", "integration", "complete", "safety_hold", "aborted", "outside",
)  # fmt: skip
ROLE_KEYS: tuple[str, ...] = ("patient", "companion")
EMERGENCY_LABEL = "level_emergency"
SUICIDE_LABEL = "suicide_risk"
JOINT_EMERGENCY = 0.7
JOINT_SUICIDE_FLOOR = 0.2
"""A message the emergency head is sure about (p >= 0.7) that the suicide head leans towards (p >= 0.2, below
its own bar) is reported as suicide risk: plans, preparations and goodbyes worded without death words score high
for the emergency level before they do for suicide. On out-of-author scores of all 11,705 authored messages this
found 33 more of 2,155 suicide-risk messages (30 of them emergency-level) for 6 more of 5,610 benign ones."""
FloatArray = npt.NDArray[np.float32]
NetworkOutput = tuple[FloatArray, npt.NDArray[np.float64] | None]
"""The neural head's probabilities and the kNN vote (None without a bank), before the n-gram blend."""


class LinearHeadArtifact(BaseModel):
    """What every trained linear head over the sentence embedding records (input and output classifiers)."""

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
    labels: list[str]
    weights: list[list[float]]
    intercepts: list[float]
    thresholds: dict[str, float]
    c: float
    metrics: dict[str, float] = Field(default_factory=dict)


class ClassifierArtifact(LinearHeadArtifact):
    """``labels``: the 15 signal names, plus ``level_emergency`` (the message needs the emergency level)."""

    role_keys: list[str]
    average_from_epoch: int | None = None
    """The final fit returned the mean of its weights from this epoch on (stochastic weight averaging), or its last
    weights (None, as every artifact before rule 39)."""
    knn_bank: str | None = None
    """File next to this artifact (npz: float16 ``embeddings``, int8 ``labels``) for the kNN vote. The vectors are
    the mean-pooled, normalised output of the last frozen layer (``STATE_LAYER``), which screening computes anyway:
    a second view of the sentence that fine-tuning did not shape."""
    knn_bank_sha256: str | None = None
    knn_labels: list[str] = Field(default_factory=list)
    """Labels whose probability is blended with a kNN vote over the training sentences."""
    knn_weight: float = Field(default=0.0, ge=0.0, le=1.0)
    knn_k: int = Field(default=10, ge=1)
    lexical_model: str | None = None
    """File next to this artifact (npz) with the word/character n-gram crisis models (``lexical.py``)."""
    lexical_sha256: str | None = None
    lexical_weight: float = Field(default=0.0, ge=0.0, le=1.0)
    head: str
    """File next to this artifact (npz: ``w1``, ``b1``, ``w2``, ``b2``) with the neural head; the inherited
    ``weights``/``intercepts`` of a linear head stay empty."""
    head_sha256: str
    tuned_layers: str
    """File next to this artifact (npz, float16) with the fine-tuned last MiniLM layers (``tuned_layers.py``)."""
    tuned_layers_sha256: str
    reference_texts: list[str] = Field(default_factory=list)
    reference_scores: list[list[float]] = Field(default_factory=list)
    """The head's probabilities for ``reference_texts`` (patient, no phase) when it was trained."""
    veto_override: dict[str, float] = Field(default_factory=dict)
    """Per crisis label: the probability at which the classifier's reading overrides the rules' context veto
    (negation, past, fiction, expected effect, a bare means question); chosen out of author within a benign budget
    in ``train.py``. Labels not listed never override."""
    rule_demotion: dict[str, float] = Field(default_factory=dict)
    """Per label (the crisis signals and the recoverable ones in ``train.RECOVERABLE_LABELS``): below this
    probability a signal that only the rules found is kept at ``monitor`` (a second opinion against the rules' false
    alarms: "said goodbye to my guide", "tired of it all. the forms"); chosen out of author within a small budget of
    missed positives in ``train.py``. Labels not listed: never."""
    disavowal_demotion: dict[str, float] = Field(default_factory=dict)
    """Per label: the same demotion where the message re-reads its own dark words (cue group ``disavowal``: "I meant
    the checking", "of embarrassment"); a higher bar chosen out of author on those messages alone, within the same
    budgets. Labels not listed: only ``rule_demotion`` applies."""
    rules_emergency_floor: float | None = None
    """Below this ``level_emergency`` probability a signal only the rules raised to emergency stays at clinician:
    the session is not put in safety hold on the rules' word alone when the classifier all but rules the emergency
    out. Set by hand (rule 33 in ``docs/GUARDRAILS_HISTORY.md``); None: never."""
    suicide_emergency_threshold: float | None = None
    """Lower ``level_emergency`` bar for a message already flagged for suicide risk (plan, intent, means and
    goodbyes are often worded indirectly; chosen out of author in ``train.py``)."""
    self_harm_emergency_threshold: float | None = None
    """``level_emergency`` bar for a message already flagged for self-harm (injuring now, a deep cut, bleeding that
    will not stop, often worded without the rules' injury words); chosen out of author in ``train.py`` so that few
    past or urge-only self-harm messages ("I cut myself earlier") are raised. None: only the rules' active-injury
    cues raise self-harm to emergency."""

    @model_validator(mode="after")
    def _no_linear_weights(self) -> ClassifierArtifact:
        if self.weights or self.intercepts:
            raise ValueError("the signal classifier's weights live in its neural head file; retrain")
        return self


@dataclass(frozen=True)
class NeuralHead:
    """Small networks (one hidden ReLU layer, then a sigmoid per label) whose probabilities are averaged; arrays
    carry the network index first. The tuned classifier exports one network."""

    w1: FloatArray  # (networks, features, hidden)
    b1: FloatArray  # (networks, hidden)
    w2: FloatArray  # (networks, hidden, labels)
    b2: FloatArray  # (networks, labels)

    def probabilities(self, features: FloatArray) -> FloatArray:
        hidden = np.maximum(np.einsum("qf,nfh->nqh", features, self.w1) + self.b1[:, None, :], 0.0)
        logits = np.einsum("nqh,nhl->nql", hidden, self.w2) + self.b2[:, None, :]
        probs: FloatArray = (1.0 / (1.0 + np.exp(-logits))).mean(axis=0).astype(np.float32)
        return probs

    def save(self, path: Path) -> None:
        with path.open("wb") as handle:
            np.savez_compressed(handle, w1=self.w1, b1=self.b1, w2=self.w2, b2=self.b2)

    @classmethod
    def load(cls, path: Path, width: int, labels: int) -> NeuralHead:
        with np.load(path) as data:
            head = cls(*(data[k].astype(np.float32) for k in ("w1", "b1", "w2", "b2")))
        networks, _, hidden = head.w1.shape
        if (
            head.w1.shape[1] != width
            or head.b1.shape != (networks, hidden)
            or head.w2.shape != (networks, hidden, labels)
            or head.b2.shape != (networks, labels)
        ):
            raise ContentError(f"{path}: neural head does not match the classifier artifact; retrain")
        return head


def data_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def verified_file(folder: Path, name: str, digest: str | None, what: str) -> Path:
    """A file written beside an artifact, refused unless its sha256 is the one recorded at training time."""
    path = folder / name
    if not path.exists() or data_sha256(path) != digest:
        raise ContentError(f"{path}: {what} missing or changed since training; retrain")
    return path


def context_features(phase: Phase | None, role: Role | str) -> FloatArray:
    key = phase_key(phase)
    role_value = role.value if isinstance(role, Role) else role
    phase_part = [1.0 if key == k else 0.0 for k in PHASE_KEYS]
    role_part = [1.0 if role_value == k else 0.0 for k in ROLE_KEYS]
    return np.array(phase_part + role_part, dtype=np.float32)


class SignalClassifier:
    def __init__(
        self, artifact: ClassifierArtifact, embedder: BundledEmbedder, tuned: TunedLayers, head: NeuralHead
    ) -> None:
        if artifact.embedding_model != MODEL_ID:
            raise ContentError(
                f"classifier was trained on {artifact.embedding_model}, runtime has {MODEL_ID}"
            )
        if tuple(artifact.phase_keys) != PHASE_KEYS or tuple(artifact.role_keys) != ROLE_KEYS:
            raise ContentError("classifier feature layout does not match this version of KetAI; retrain it")
        self.artifact = artifact
        self.embedder = embedder
        self.labels = list(artifact.labels)
        self.tuned_layers = tuned
        self.head = head
        self.thresholds = np.array(
            [artifact.thresholds.get(label, 1.01) for label in self.labels], dtype=np.float32
        )
        self.bank: FloatArray | None = None
        self.bank_labels: npt.NDArray[np.int8] | None = None
        self.knn_columns: list[int] = []
        self.lexical: LexicalModel | None = None
        self.lexical_columns: list[int] = []

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
        width = DIMENSIONS + len(artifact.phase_keys) + len(artifact.role_keys)
        head_path = verified_file(path.parent, artifact.head, artifact.head_sha256, "neural head")
        layers_path = verified_file(
            path.parent, artifact.tuned_layers, artifact.tuned_layers_sha256, "tuned layers"
        )
        head = NeuralHead.load(head_path, width, len(artifact.labels))
        classifier = cls(artifact, embedder, TunedLayers.load(layers_path), head)
        if artifact.knn_bank and artifact.knn_labels and artifact.knn_weight > 0:
            bank_path = verified_file(path.parent, artifact.knn_bank, artifact.knn_bank_sha256, "kNN bank")
            with np.load(bank_path) as bank:
                classifier.use_knn(bank["embeddings"].astype(np.float32), bank["labels"].astype(np.int8))
        if artifact.lexical_model and artifact.lexical_weight > 0:
            lexical_path = verified_file(
                path.parent, artifact.lexical_model, artifact.lexical_sha256, "lexical model"
            )
            classifier.use_lexical(LexicalModel.load(lexical_path))
        classifier.encoder  # noqa: B018 - build the session now, not inside the first screen
        return classifier

    def use_lexical(self, model: LexicalModel) -> None:
        unknown = set(model.labels) - set(self.labels)
        if unknown:
            raise ContentError(f"lexical model has labels the classifier lacks: {sorted(unknown)}; retrain")
        self.lexical = model
        self.lexical_columns = [self.labels.index(label) for label in model.labels]

    def use_knn(self, bank: FloatArray, bank_labels: npt.NDArray[np.int8]) -> None:
        if bank.shape[1] != DIMENSIONS or bank_labels.shape != (bank.shape[0], len(self.artifact.knn_labels)):
            raise ContentError("kNN bank does not match the classifier artifact; retrain")
        self.bank, self.bank_labels = bank, bank_labels
        self.knn_columns = [self.labels.index(label) for label in self.artifact.knn_labels]
        self.__dict__.pop("encoder", None)  # rebuilt with the bank in its graph

    @cached_property
    def encoder(self) -> SignalEncoder:
        """The network as one onnxruntime session (built on first use, with the kNN bank if there is one)."""
        return SignalEncoder(self.embedder, self.tuned_layers, self.bank if self.knn_columns else None)

    def threshold(self, label: str) -> float:
        return float(self.thresholds[self.labels.index(label)])

    def veto_override(self, label: str) -> float:
        """The probability at which ``label`` overrides a soft context veto (above 1: never)."""
        return self.artifact.veto_override.get(label, 1.01)

    def probabilities(self, texts: list[str], contexts: list[FloatArray]) -> FloatArray:
        """The head's own probabilities (no kNN or n-gram blend)."""
        return self._head(self.encoder.encode(texts), contexts)

    def _head(self, encoded: Encoded, contexts: list[FloatArray]) -> FloatArray:
        features = np.hstack([encoded.tuned, np.vstack(contexts)]).astype(np.float32)
        return self.head.probabilities(features)

    def scores(self, texts: list[str], contexts: list[FloatArray]) -> FloatArray:
        """Probabilities, with the kNN vote and the n-gram models blended in (what thresholds apply to)."""
        lexical = self.lexical.matrix(texts) if self.lexical is not None else None
        return self._blended(self._network(texts, contexts), lexical)

    def _network(self, texts: list[str], contexts: list[FloatArray]) -> NetworkOutput:
        """The head's probabilities and the kNN vote: the part that runs on the screening worker."""
        encoded = self.encoder.encode(texts)
        vote: npt.NDArray[np.float64] | None = None
        if (
            encoded.candidates is not None
            and encoded.similarities is not None
            and self.bank_labels is not None
        ):
            vote = vote_from_candidates(
                encoded.similarities, encoded.candidates, self.bank_labels, self.artifact.knn_k
            )
        return self._head(encoded, contexts), vote

    def _blended(self, network: NetworkOutput, lexical: npt.NDArray[Any] | None) -> FloatArray:
        probs, vote = network
        if vote is not None:
            blend(probs, self.knn_columns, vote, self.artifact.knn_weight)
        if lexical is not None:
            blend(probs, self.lexical_columns, lexical, self.artifact.lexical_weight)
        return probs

    def emergency_capable(self, probability: float) -> frozenset[str]:
        """The signals a ``level_emergency`` reading of ``probability`` may raise to emergency: suicide risk from its
        lower bar, self-harm from its own, abuse and psychosis from the label's threshold."""
        labels: set[str] = set()
        full = self.threshold(EMERGENCY_LABEL) if EMERGENCY_LABEL in self.labels else 1.01
        if probability >= full:
            labels |= {
                SUICIDE_LABEL,
                SignalName.ABUSE_OR_UNSAFE_HOME.value,
                SignalName.PSYCHOSIS_OR_SEVERE_DISTRESS.value,
            }
        lower = self.artifact.suicide_emergency_threshold
        if lower is not None and probability >= lower:
            labels.add(SUICIDE_LABEL)
        self_harm = self.artifact.self_harm_emergency_threshold
        if self_harm is not None and probability >= self_harm:
            labels.add(SignalName.SELF_HARM.value)
        return frozenset(labels)

    def rule_demotion(self, label: str, *, disavowed: bool = False) -> float:
        """Below this probability a rules-only ``label`` is kept at monitor (0: never); ``disavowed``: the message
        re-reads its own words, where the (higher) ``disavowal_demotion`` bar also applies."""
        bar = self.artifact.rule_demotion.get(label, 0.0)
        if disavowed:
            bar = max(bar, self.artifact.disavowal_demotion.get(label, 0.0))
        return bar

    def warm_up(self) -> None:
        """Load the sessions and start the worker now (a first screen otherwise pays for them)."""
        self.embedder.warm_up()
        self.read("warm up", None, Role.PATIENT)

    def predict(self, text: str, phase: Phase | None, role: Role) -> dict[str, float]:
        """Labels (signal names, ``level_emergency``) whose score reaches their threshold."""
        return self.read(text, phase, role).found

    def read(self, text: str, phase: Phase | None, role: Role) -> Reading:
        """Every label's probability, and the labels found (``predict``)."""
        return self.begin_read(text, phase, role).result()

    def begin_read(self, text: str, phase: Phase | None, role: Role) -> PendingReading:
        """Start ``read``: the network runs on the screening worker while the caller goes on (the rules);
        ``PendingReading.result`` finishes it."""
        contexts = [context_features(phase, role)]
        return PendingReading(self, text, in_background(lambda: self._network([text], contexts)))

    def reading_from(self, probs: FloatArray) -> Reading:
        """The decision on top of one message's blended probabilities (thresholds and the joint suicide bar)."""
        found = {
            label: float(p) for label, p, t in zip(self.labels, probs, self.thresholds, strict=True) if p >= t
        }
        if EMERGENCY_LABEL in self.labels and SUICIDE_LABEL in self.labels and SUICIDE_LABEL not in found:
            emergency = float(probs[self.labels.index(EMERGENCY_LABEL)])
            suicide = float(probs[self.labels.index(SUICIDE_LABEL)])
            if emergency >= JOINT_EMERGENCY and suicide >= JOINT_SUICIDE_FLOOR:
                found[SUICIDE_LABEL] = suicide
        return Reading(found, {label: float(p) for label, p in zip(self.labels, probs, strict=True)})


@dataclass(frozen=True)
class PendingReading:
    """A ``read`` whose network part is running on the screening worker."""

    classifier: SignalClassifier
    text: str
    network: Future[NetworkOutput]

    def result(self) -> Reading:
        # The n-gram models are Python, so they run here, on the caller's thread, while the worker finishes.
        classifier = self.classifier
        lexical = classifier.lexical.matrix([self.text]) if classifier.lexical is not None else None
        probs = classifier._blended(self.network.result(), lexical)
        return classifier.reading_from(probs[0])


@dataclass(frozen=True)
class Reading:
    found: dict[str, float]
    """Labels whose score reaches their threshold (with the joint suicide bar). The emergency level's lower,
    per-signal bars are applied to ``probabilities`` by ``SignalClassifier.emergency_capable``."""
    probabilities: dict[str, float]


def blend(probs: npt.NDArray[Any], columns: list[int], other: npt.NDArray[Any], weight: float) -> None:
    """In place: ``columns`` of ``probs`` become (1 - weight) x themselves + weight x ``other`` (the runtime blend of
    the head with the kNN vote and the n-gram models; training scores out-of-author rows with the same call)."""
    probs[:, columns] = ((1 - weight) * probs[:, columns] + weight * other).astype(probs.dtype)


def knn_vote(
    bank: FloatArray, bank_labels: npt.NDArray[np.int8], queries: FloatArray, k: int
) -> npt.NDArray[np.float64]:
    """Per query and label: similarity-weighted share of the ``k`` nearest training sentences carrying it.

    Embeddings are L2-normalised, so the dot product is the cosine similarity."""
    return vote_from_similarities(queries @ bank.T, bank_labels, k)


def vote_from_similarities(
    sims: npt.NDArray[Any], bank_labels: npt.NDArray[np.int8], k: int
) -> npt.NDArray[np.float64]:
    """``knn_vote`` from the similarities of each query to every bank sentence (queries x bank)."""
    nearest = _nearest(sims, k)
    return _weighted_vote(np.take_along_axis(sims, nearest, axis=1), bank_labels[nearest])


def vote_from_candidates(
    sims: npt.NDArray[Any], candidates: npt.NDArray[np.int64], bank_labels: npt.NDArray[np.int8], k: int
) -> npt.NDArray[np.float64]:
    """``vote_from_similarities`` from each query's candidate rows (``candidates``, indices into the bank) and their
    similarities: the same vote whenever the nearest ``k`` are among the candidates."""
    nearest = _nearest(sims, k)
    rows = np.take_along_axis(candidates, nearest, axis=1)
    return _weighted_vote(np.take_along_axis(sims, nearest, axis=1), bank_labels[rows])


def _nearest(sims: npt.NDArray[Any], k: int) -> npt.NDArray[np.intp]:
    """Column indices of each row's ``k`` highest similarities (unordered)."""
    k = min(k, sims.shape[1])
    nearest: npt.NDArray[np.intp] = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    return nearest


def _weighted_vote(sims: npt.NDArray[Any], labels: npt.NDArray[np.int8]) -> npt.NDArray[np.float64]:
    """Per query and label: the similarity-weighted share of its nearest sentences (queries x k x labels) carrying
    the label; negative similarities weigh nothing."""
    weight = np.clip(sims, 0.0, None).astype(np.float64)
    votes = np.einsum("qk,qkl->ql", weight, labels.astype(np.float64))
    result: npt.NDArray[np.float64] = votes / np.maximum(weight.sum(axis=1, keepdims=True), 1e-9)
    return result


_SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+|\n|$)")
CHUNK_MIN_WORDS = 30
"""Messages longer than this are also read in windows of two sentences (long posts dilute one embedding)."""
MAX_CHUNKS = 6


def windows(text: str) -> list[str]:
    """Two-sentence windows of a long message (empty for short ones), at most ``MAX_CHUNKS``, evenly spread."""
    if len(text.split()) <= CHUNK_MIN_WORDS:
        return []
    sentences = [s.strip() for s in _SENTENCE.findall(text) if len(s.split()) >= 2]
    if len(sentences) < 3:
        return []
    pairs = [" ".join(sentences[i : i + 2]) for i in range(0, len(sentences) - 1)]
    if len(pairs) > MAX_CHUNKS:
        step = len(pairs) / MAX_CHUNKS
        pairs = [pairs[int(i * step)] for i in range(MAX_CHUNKS)]
    return pairs
