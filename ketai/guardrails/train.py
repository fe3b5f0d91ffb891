"""Train the signal classifier: ``python -m ketai.guardrails.train``.

Reproducible: fixed seed, deterministic solver (liblinear), inputs hashed into the artifact. Reads
``evals/guardrails/train.jsonl`` plus the example sentences in ``guardrails/lexicons/*.yaml`` (our own words,
a second source of phrasing) for the weights, and ``dev.jsonl`` to choose C and each signal's threshold.
Thresholds are chosen for the classifier alone (F2 for crisis signals and the emergency level, F1 for the
rest, never below a floor), gated exactly as at runtime. Test files are never read.

scikit-learn is only needed here (a dev dependency); the runtime uses numpy with the exported weights.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ketai.content.paths import content_dir
from ketai.embeddings import MODEL_ID, shared_embedder
from ketai.guardrails.classifier import (
    ARTIFACT_NAME,
    EMERGENCY_LABEL,
    PHASE_KEYS,
    ROLE_KEYS,
    context_features,
    data_sha256,
)
from ketai.guardrails.loader import GuardrailContent, load_content
from ketai.guardrails.rules import RuleEngine
from ketai.models import Phase, Role, SignalName

SEED = 20261127
C_GRID = (1.0, 2.0, 4.0, 8.0, 16.0)
THRESHOLD_GRID = tuple(round(x, 2) for x in np.arange(0.20, 0.91, 0.05))
THRESHOLD_FLOOR = 0.40
CRISIS_BETA = 2.0
EMERGENCY_FLOOR = 0.5
NEVER_FROM_CLASSIFIER = frozenset({SignalName.PROMPT_INJECTION.value, SignalName.ADVERSE_EFFECT.value})
"""Prompt injection is left to the rules: a false positive would only add noise."""


def read_rows(path: Path) -> list[dict[str, Any]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            rows.append(json.loads(line))
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
                    {
                        "text": text,
                        "phase": phase,
                        "role": role,
                        "signals": [lexicon.signal.value],
                        "level": level,
                    }
                )
            for text in pattern.non_examples:
                rows.append({"text": text, "phase": phase, "role": role, "signals": [], "level": "none"})
    for idiom in content.modifiers.idioms:
        rows += [
            {"text": t, "phase": None, "role": "patient", "signals": [], "level": "none"}
            for t in idiom.examples
        ]
    return rows


def featurise(rows: list[dict[str, Any]], engine: RuleEngine) -> npt.NDArray[np.float32]:
    texts = [engine.prepare(r["text"])[0] for r in rows]
    contexts = [
        context_features(Phase(r["phase"]) if r.get("phase") else None, r.get("role", "patient"))
        for r in rows
    ]
    embeddings = shared_embedder().embed(texts)
    return np.hstack([embeddings, np.vstack(contexts)]).astype(np.float32)


def has_label(row: dict[str, Any], label: str) -> bool:
    if label == EMERGENCY_LABEL:
        return bool(row["level"] == "emergency")
    return label in row["signals"]


def labels_matrix(rows: list[dict[str, Any]], labels: list[str]) -> npt.NDArray[np.int8]:
    return np.array([[1 if has_label(r, label) else 0 for label in labels] for r in rows], dtype=np.int8)


def fit(
    x: npt.NDArray[np.float32], y: npt.NDArray[np.int8], c: float
) -> tuple[list[list[float]], list[float]]:
    from sklearn.linear_model import LogisticRegression

    weights: list[list[float]] = []
    intercepts: list[float] = []
    for column in range(y.shape[1]):
        target = y[:, column]
        if target.sum() == 0:
            weights.append([0.0] * x.shape[1])
            intercepts.append(-20.0)
            continue
        model = LogisticRegression(
            C=c, class_weight="balanced", solver="liblinear", random_state=SEED, max_iter=2000
        )
        model.fit(x, target)
        weights.append([float(v) for v in model.coef_[0]])
        intercepts.append(float(model.intercept_[0]))
    return weights, intercepts


def probabilities(
    x: npt.NDArray[np.float32], weights: list[list[float]], intercepts: list[float]
) -> npt.NDArray[np.float64]:
    logits = x @ np.array(weights, dtype=np.float64).T + np.array(intercepts)
    result: npt.NDArray[np.float64] = 1.0 / (1.0 + np.exp(-logits))
    return result


def f_beta(tp: int, fp: int, fn: int, beta: float) -> float:
    if tp == 0:
        return 0.0
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    return (1 + beta**2) * precision * recall / (beta**2 * precision + recall)


def choose_thresholds(
    probs: npt.NDArray[np.float64],
    y: npt.NDArray[np.int8],
    rule_hits: npt.NDArray[np.int8],
    allowed: npt.NDArray[np.int8],
    labels: list[str],
    crisis: set[str],
    crisis_beta: float = CRISIS_BETA,
    floor: float = THRESHOLD_FLOOR,
) -> tuple[dict[str, float], dict[str, float]]:
    """Per label, the threshold maximising F-beta of the classifier alone (where runtime allows it) on dev.

    Scored without the rules on purpose: the rules were written while reading train and dev, so a combined
    score would switch the classifier off exactly where it is the independent safety net for unseen phrasings.
    """
    thresholds: dict[str, float] = {}
    metrics: dict[str, float] = {}
    for j, label in enumerate(labels):
        if label in NEVER_FROM_CLASSIFIER:
            thresholds[label] = 1.01
            continue
        beta = crisis_beta if label in crisis else 1.0
        low = floor
        if label == EMERGENCY_LABEL:  # raises an already-detected crisis signal to emergency (safety hold)
            beta, low = 1.0, max(floor, EMERGENCY_FLOOR)
        best = (0.0, 1.01)
        for t in THRESHOLD_GRID:
            if t < low:
                continue
            predicted = ((probs[:, j] >= t) & (allowed[:, j] == 1)).astype(np.int8)
            tp = int((predicted & y[:, j]).sum())
            fp = int((predicted & (1 - y[:, j])).sum())
            fn = int(((1 - predicted) & y[:, j]).sum())
            score = f_beta(tp, fp, fn, beta)
            if score > best[0] + 1e-9:
                best = (score, float(t))
        thresholds[label] = best[1]
        metrics[f"dev_f{int(beta)}_{label}"] = round(best[0], 4)
    return thresholds, metrics


def rule_matrices(
    rows: list[dict[str, Any]],
    engine: RuleEngine,
    labels: list[str],
    phases: Mapping[str, Sequence[str] | None],
) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.int8]]:
    """What the rules flag per row and label, and where the classifier is allowed to add a label
    (gate open, not cancelled by context, phase applicable, no fiction cue) - as at runtime."""
    hits = np.zeros((len(rows), len(labels)), dtype=np.int8)
    allowed = np.ones((len(rows), len(labels)), dtype=np.int8)
    for i, r in enumerate(rows):
        phase = Phase(r["phase"]) if r.get("phase") else None
        result = engine.screen(r["text"], phase=phase, role=Role(r.get("role", "patient")))
        for hit in result.hits:
            hits[i, labels.index(hit.signal.value)] = 1
            if hit.level.value == "emergency":
                hits[i, labels.index(EMERGENCY_LABEL)] = 1
        for j, label in enumerate(labels):
            if label == EMERGENCY_LABEL:
                allowed[i, j] = 0 if (result.dystonic or result.fiction) else 1
                continue
            name = SignalName(label)
            allowed_phases = phases.get(label)
            key = r.get("phase") or "outside"
            if (
                name in result.cancelled
                or result.fiction
                or not engine.gate_open(name, result.screened_text)
                or (allowed_phases is not None and key not in allowed_phases)
            ):
                allowed[i, j] = 0
    return hits, allowed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=content_dir("evals") / "guardrails")
    parser.add_argument("--out", type=Path, default=content_dir("guardrails") / "classifier" / ARTIFACT_NAME)
    parser.add_argument("--c", type=float, default=None, help="fix C instead of choosing it on dev")
    parser.add_argument("--crisis-beta", type=float, default=CRISIS_BETA, help="F-beta for crisis thresholds")
    parser.add_argument("--floor", type=float, default=THRESHOLD_FLOOR, help="lowest allowed threshold")
    args = parser.parse_args(argv)
    train_path, dev_path = args.data / "train.jsonl", args.data / "dev.jsonl"
    content = load_content()
    engine = RuleEngine(content)
    labels = [name.value for name in SignalName] + [EMERGENCY_LABEL]
    crisis = {name.value for name, spec in content.signals.signals.items() if spec.crisis}
    phases = {name.value: spec.phases for name, spec in content.signals.signals.items()}
    train_rows, dev_rows = read_rows(train_path) + lexicon_rows(content), read_rows(dev_path)
    x_train, x_dev = featurise(train_rows, engine), featurise(dev_rows, engine)
    y_train, y_dev = labels_matrix(train_rows, labels), labels_matrix(dev_rows, labels)
    rules_dev, allowed_dev = rule_matrices(dev_rows, engine, labels, phases)
    best: tuple[float, float] = (-1.0, C_GRID[0])
    for c in C_GRID if args.c is None else ():  # C by dev micro-F1 of the classifier alone at 0.5
        weights, intercepts = fit(x_train, y_train, c)
        predicted = (probabilities(x_dev, weights, intercepts) >= 0.5).astype(np.int8)
        tp = int((predicted & y_dev).sum())
        score = f_beta(tp, int((predicted & (1 - y_dev)).sum()), int(((1 - predicted) & y_dev).sum()), 1.0)
        print(f"C={c}: dev micro-F1 {score:.3f}")
        if score > best[0]:
            best = (score, c)
    c = args.c if args.c is not None else best[1]
    weights, intercepts = fit(x_train, y_train, c)
    thresholds, metrics = choose_thresholds(
        probabilities(x_dev, weights, intercepts),
        y_dev,
        rules_dev,
        allowed_dev,
        labels,
        crisis,
        args.crisis_beta,
        args.floor,
    )
    metrics["dev_micro_f1_classifier_at_0.5"] = round(best[0], 4)
    artifact = {
        "id": "signal-classifier",
        "version": 1,
        "reviewed_by": "pending-clinician-review",
        "embedding_model": MODEL_ID,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seed": SEED,
        "data_files": {train_path.name: data_sha256(train_path), dev_path.name: data_sha256(dev_path)},
        "phase_keys": list(PHASE_KEYS),
        "role_keys": list(ROLE_KEYS),
        "labels": labels,
        "weights": [[round(v, 6) for v in row] for row in weights],
        "intercepts": [round(v, 6) for v in intercepts],
        "thresholds": thresholds,
        "c": c,
        "metrics": metrics,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(artifact, indent=1) + "\n", encoding="utf-8")
    print(
        f"wrote {args.out} (C={c}; thresholds: " + ", ".join(f"{k}={v}" for k, v in thresholds.items()) + ")"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
