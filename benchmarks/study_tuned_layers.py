"""Study: fine-tuned last layers vs a head over the frozen sentence vector, out of author (needs `make train`'s torch).

    .venv/bin/python benchmarks/study_tuned_layers.py [--epochs N] [--frozen]

Holds out two of eight seeded author groups (about a quarter of the messages), fits on the rest and prints, per
crisis label, recall at a fixed benign false-alarm rate (suicide 3%, self-harm and medical 1%, emergency level 2%)
for the tuned layers + head (``train_tuned.fit_tuned``) alone and in blends with the n-gram models (weight 1/2,
what ships) with or without a 0.3 kNN vote over the training sentences. The kNN vectors are the bundled model's
sentence vector (shipped until 2026-11-27; it needs the base model's last two layers at runtime), the tuned vector,
or the mean-pooled output of the last frozen layer (shipped since; screening computes it anyway). With
``--frozen`` it also fits five averaged one-hidden-layer networks over the frozen MiniLM vector (the head used
before the tuned layers). The thresholds here are set on the held-out scores themselves, so compare rows, not
absolute values.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ketai.content.paths import content_dir
from ketai.embeddings import shared_embedder
from ketai.guardrails import train, train_tuned
from ketai.guardrails.classifier import EMERGENCY_LABEL, knn_vote
from ketai.guardrails.loader import load_content
from ketai.guardrails.rules import RuleEngine
from ketai.guardrails.train import KNN_K
from ketai.guardrails.train_data import lexicon_rows, memory_control_rows, read_split
from ketai.guardrails.train_lexical import fit_lexical
from ketai.models import SignalName

BUDGETS = {"suicide_risk": 0.03, "self_harm": 0.01, "medical_emergency": 0.01, "level_emergency": 0.02}


def frozen_head(
    x: npt.NDArray[np.float32], y: npt.NDArray[np.int8], fit_rows: list[int]
) -> npt.NDArray[np.float64]:
    from sklearn.neural_network import MLPClassifier

    nets = [
        MLPClassifier(hidden_layer_sizes=(256,), alpha=1e-3, early_stopping=True, random_state=train.SEED + k,
                      max_iter=300).fit(x[fit_rows], y[fit_rows])
        for k in range(5)
    ]  # fmt: skip
    mean: npt.NDArray[np.float64] = np.mean([net.predict_proba(x) for net in nets], axis=0)
    return mean


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=train_tuned.EPOCHS)
    parser.add_argument("--frozen", action="store_true", help="also fit the frozen-vector networks")
    args = parser.parse_args()
    train_tuned.EPOCHS = args.epochs
    data_dir: Path = content_dir("evals") / "guardrails"
    content = load_content()
    label_names = [s.value for s in SignalName] + [EMERGENCY_LABEL]
    rows = read_split(data_dir, "train") + read_split(data_dir, "dev") + memory_control_rows(data_dir)
    rows += lexicon_rows(content)
    data = train.training_data(rows, RuleEngine(content), label_names)
    train.OOA_FOLDS = 8
    folds = train.author_folds(data.authors)
    out = np.isin(data.authors, sorted(folds[0] | folds[1]))
    inside, outside = np.flatnonzero(~out).tolist(), np.flatnonzero(out).tolist()
    y, benign = data.y, train.benign_vector(rows)
    print(f"held out {len(outside)} messages by {len(folds[0] | folds[1])} authors; fitted on {len(inside)}")

    def report(name: str, p: npt.NDArray[np.float64]) -> None:
        parts = []
        for label, budget in BUDGETS.items():
            j = label_names.index(label)
            bar = np.quantile(p[benign[out] == 1, j], 1 - budget)
            parts.append(f"{label}={float((p[y[out][:, j] == 1, j] > bar).mean()):.3f}")
        print(f"{name:44s} " + " ".join(parts), flush=True)

    base = shared_embedder().embed(data.texts)
    tuned, head = train_tuned.fit_tuned(data.states, data.context, y, inside, train.SEED)
    features = train_tuned.tuned_features(tuned, data.states, data.context, list(range(len(rows))))
    fine = head.probabilities(features[out]).astype(np.float64)
    crisis = [label_names.index(k) for k in ("medical_emergency", "self_harm", "suicide_risk")]
    lexical_columns = [*crisis, label_names.index(EMERGENCY_LABEL)]
    base_vote = knn_vote(base[~out], y[~out][:, crisis], base[out], KNN_K)
    vectors = features[:, : base.shape[1]]
    tuned_vote = knn_vote(vectors[~out], y[~out][:, crisis], vectors[out], KNN_K)
    frozen_states = np.vstack([s.astype(np.float32).mean(axis=0) for s in data.states])
    frozen_states /= np.linalg.norm(frozen_states, axis=1, keepdims=True)
    state_vote = knn_vote(frozen_states[~out], y[~out][:, crisis], frozen_states[out], KNN_K)
    lexical = fit_lexical(
        [data.texts[i] for i in inside], y[~out][:, lexical_columns], [str(i) for i in lexical_columns]
    )
    ngrams = lexical.matrix([data.texts[i] for i in outside])

    def blended(p: npt.NDArray[np.float64], vote: npt.NDArray[np.float64] | None) -> npt.NDArray[np.float64]:
        p = p.copy()
        if vote is not None:
            p[:, crisis] = 0.7 * p[:, crisis] + 0.3 * vote
        p[:, lexical_columns] = 0.5 * p[:, lexical_columns] + 0.5 * ngrams
        return p

    if args.frozen:
        x = np.hstack([base, data.context]).astype(np.float32)
        report("frozen vector, five networks", frozen_head(x, y, inside)[out])
    report(f"tuned last layers + head ({args.epochs} epochs)", fine)
    report("tuned + n-grams 1/2 (no kNN)", blended(fine, None))
    report("tuned + base-vector kNN 0.3 + n-grams 1/2", blended(fine, base_vote))
    report("tuned + tuned-vector kNN 0.3 + n-grams 1/2", blended(fine, tuned_vote))
    report("tuned + frozen-layer kNN 0.3 + n-grams 1/2", blended(fine, state_vote))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
