"""Training data for the signal classifier: which files, which author wrote them, and their features.

Weights are fitted on ``train.jsonl`` plus every ``train_extra_<author>.jsonl``; thresholds are chosen on
``dev.jsonl`` plus every ``dev_extra_<author>.jsonl`` (several writers pooled, so a threshold cannot fit one
person's phrasing). The original files belong to the author ``original``. Test files are never listed here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ketai.embeddings import DIMENSIONS, shared_embedder
from ketai.guardrails.classifier import EMERGENCY_LABEL, PHASE_KEYS, ROLE_KEYS, context_features, windows
from ketai.guardrails.loader import GuardrailContent
from ketai.guardrails.rules import RuleEngine
from ketai.guardrails.schema import phase_key
from ketai.guardrails.screening import DISAVOWAL_CUE, classifier_veto
from ketai.models import EscalationLevel, Phase, Role, SignalName

ORIGINAL_AUTHOR = "original"


def read_rows(path: Path) -> list[dict[str, Any]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            rows.append(json.loads(line))
    return rows


def split_files(data: Path, split: str) -> list[Path]:
    """``{split}.jsonl`` then every ``{split}_extra_*.jsonl`` (sorted); only ``train`` and ``dev`` allowed."""
    if split not in ("train", "dev"):
        raise ValueError("only train and dev files may be used for training")
    base = data / f"{split}.jsonl"
    return [base, *sorted(data.glob(f"{split}_extra_*.jsonl"))]


def author_of(path: Path) -> str:
    stem = path.stem
    return stem.split("_extra_", 1)[1] if "_extra_" in stem else ORIGINAL_AUTHOR


def read_split(data: Path, split: str) -> list[dict[str, Any]]:
    """All rows of a split, each tagged with ``_author`` (from its file name)."""
    rows: list[dict[str, Any]] = []
    for path in split_files(data, split):
        rows += [{**r, "_author": author_of(path)} for r in read_rows(path)]
    return rows


MEMORY_TRAIN = "memory_train.jsonl"


def memory_control_rows(data: Path) -> list[dict[str, Any]]:
    """Every turn of the control sequences in ``memory_train.jsonl`` (final level ``none``) as a benign row.

    These are the everyday look-alikes of means-seeking (rope swings, car keys, refill counts): the
    classifier must learn that they are harmless on their own. Risk sequences are left out, because their
    last turn is risky only because of what came before."""
    path = data / MEMORY_TRAIN
    if not path.exists():
        return []
    rows: list[dict[str, Any]] = []
    for sequence in read_rows(path):
        if sequence["final"]["level"] != "none":
            continue
        for turn in sequence["turns"]:
            rows.append(
                {"text": turn["text"], "phase": turn.get("phase"), "role": turn.get("role", "patient"),
                 "signals": [], "level": "none", "benign": True, "_author": ORIGINAL_AUTHOR}
            )  # fmt: skip
    return rows


def lexicon_rows(content: GuardrailContent) -> list[dict[str, Any]]:
    """Our own example sentences from the lexicons (positives) and their look-alikes and idioms (negatives).

    They come from a second hand than train.jsonl, so they widen the classifier's view of phrasing."""
    rows: list[dict[str, Any]] = []
    for lexicon in content.lexicons.values():
        for pattern in lexicon.patterns:
            phases = [p for p in (pattern.phases or []) if p != "outside"]
            phase = phases[0] if phases and "outside" not in (pattern.phases or []) else None
            role = (pattern.roles or ["patient"])[0]
            level = pattern.level.value
            for text in pattern.examples:
                rows.append(
                    {"text": text, "phase": phase, "role": role, "signals": [lexicon.signal.value],
                     "level": level, "_author": "lexicon"}
                )  # fmt: skip
            for text in pattern.non_examples:
                rows.append(
                    {"text": text, "phase": phase, "role": role, "signals": [], "level": "none",
                     "_author": "lexicon", "benign": True}
                )  # fmt: skip
    for idiom in content.modifiers.idioms:
        rows += [
            {"text": t, "phase": None, "role": "patient", "signals": [], "level": "none", "_author": "lexicon",
             "benign": True}
            for t in idiom.examples
        ]  # fmt: skip
    return rows


def row_context(row: dict[str, Any]) -> npt.NDArray[np.float32]:
    """One-hot phase and role of a labelled row, as the classifier sees them."""
    return context_features(Phase(row["phase"]) if row.get("phase") else None, row.get("role", "patient"))


def context_matrix(rows: list[dict[str, Any]]) -> npt.NDArray[np.float32]:
    return np.vstack([row_context(r) for r in rows]).astype(np.float32)


def featurise(rows: list[dict[str, Any]], engine: RuleEngine) -> npt.NDArray[np.float32]:
    texts = [engine.prepare(r["text"])[0] for r in rows]
    embeddings = shared_embedder().embed(texts)
    return np.hstack([embeddings, context_matrix(rows)]).astype(np.float32)


def window_features(
    rows: list[dict[str, Any]], engine: RuleEngine
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Features of the two-sentence windows of long rows, and the row each window belongs to."""
    texts: list[str] = []
    contexts: list[npt.NDArray[np.float32]] = []
    owner: list[int] = []
    for i, r in enumerate(rows):
        context = row_context(r)
        for window in windows(engine.prepare(r["text"])[0]):
            texts.append(window)
            contexts.append(context)
            owner.append(i)
    width = DIMENSIONS + len(PHASE_KEYS) + len(ROLE_KEYS)
    if not texts:
        return np.zeros((0, width), dtype=np.float32), np.zeros(0, dtype=np.int64)
    features = np.hstack([shared_embedder().embed(texts), np.vstack(contexts)]).astype(np.float32)
    return features, np.array(owner, dtype=np.int64)


def has_label(row: dict[str, Any], label: str) -> bool:
    if label == EMERGENCY_LABEL:
        return bool(row["level"] == "emergency")
    return label in row["signals"]


def labels_matrix(rows: list[dict[str, Any]], labels: list[str]) -> npt.NDArray[np.int8]:
    return np.array([[1 if has_label(r, label) else 0 for label in labels] for r in rows], dtype=np.int8)


@dataclass(frozen=True)
class RuleMatrices:
    """Per row (and label): what the rules flag, where the classifier may add the label (the runtime's own
    ``classifier_veto``), where only an overridable context veto stops it, and whether the rules alone escalate
    the row to companion or higher."""

    hits: npt.NDArray[np.int8]
    strong_hits: npt.NDArray[np.int8]
    """Hits at companion level or above (what a demotion to monitor would change)."""
    allowed: npt.NDArray[np.int8]
    soft_veto: npt.NDArray[np.int8]
    escalated: npt.NDArray[np.int8]
    disavowed: npt.NDArray[np.int8]
    """Per row: the message re-reads its own dark words (cue group ``disavowal``)."""

    def subset(self, rows: npt.NDArray[np.bool_]) -> RuleMatrices:
        """The same matrices for the selected rows only."""
        return RuleMatrices(*(getattr(self, f.name)[rows] for f in fields(self)))


def rule_matrices(rows: list[dict[str, Any]], engine: RuleEngine, labels: list[str]) -> RuleMatrices:
    specs = engine.content.signals.signals
    hits = np.zeros((len(rows), len(labels)), dtype=np.int8)
    allowed = np.ones((len(rows), len(labels)), dtype=np.int8)
    soft = np.zeros((len(rows), len(labels)), dtype=np.int8)
    strong = np.zeros((len(rows), len(labels)), dtype=np.int8)
    escalated = np.zeros(len(rows), dtype=np.int8)
    disavowed = np.zeros(len(rows), dtype=np.int8)
    for i, r in enumerate(rows):
        phase = Phase(r["phase"]) if r.get("phase") else None
        result = engine.screen(r["text"], phase=phase, role=Role(r.get("role", "patient")))
        escalated[i] = int(any(h.level >= EscalationLevel.COMPANION for h in result.hits))
        disavowed[i] = int(DISAVOWAL_CUE in result.cues)
        for hit in result.hits:
            if hit.signal.value in labels:
                hits[i, labels.index(hit.signal.value)] = 1
                if hit.level >= EscalationLevel.COMPANION:
                    strong[i, labels.index(hit.signal.value)] = 1
            if hit.level == EscalationLevel.EMERGENCY and EMERGENCY_LABEL in labels:
                hits[i, labels.index(EMERGENCY_LABEL)] = 1
        for j, label in enumerate(labels):
            if label == EMERGENCY_LABEL:
                allowed[i, j] = 0 if (result.dystonic or result.fiction) else 1
                continue
            veto = classifier_veto(engine, specs, SignalName(label), result, phase_key(phase))
            if veto is not None:
                allowed[i, j] = 0
                soft[i, j] = 0 if veto.firm else 1
    return RuleMatrices(hits, strong, allowed, soft, escalated, disavowed)
