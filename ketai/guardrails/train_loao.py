"""Leave-one-author-out comparison for the crisis part of the signal classifier.

``python -m ketai.guardrails.train_loao``: for each writer (``original`` = train.jsonl + dev.jsonl, and each
``*_extra_<author>`` pair) train on the other writers' train files (+ lexicon examples), choose crisis
thresholds on the other writers' dev files, and score the held-out writer's train + dev rows. Reports, per
configuration (C, class weighting, kNN blend) and held-out writer: crisis recall of rules + classifier,
classifier-only recall, and the share of benign messages escalated. The configuration that generalises best
across writers is the one ``train.py`` uses. Test files are never read.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ketai.content.paths import content_dir
from ketai.embeddings import DIMENSIONS
from ketai.guardrails.classifier import knn_vote
from ketai.guardrails.loader import load_content
from ketai.guardrails.rules import RuleEngine
from ketai.guardrails.train import (
    BENIGN_BUDGET,
    CRISIS_LABELS,
    benign_vector,
    crisis_threshold,
    fit,
    probabilities,
)
from ketai.guardrails.train_data import (
    featurise,
    labels_matrix,
    lexicon_rows,
    memory_control_rows,
    read_split,
    rule_matrices,
    window_features,
)

LABELS = sorted(CRISIS_LABELS)


@dataclass(frozen=True)
class Config:
    c: float
    balanced: bool
    knn_weight: float
    k: int = 10
    chunks: bool = False
    budget: float = BENIGN_BUDGET

    def __str__(self) -> str:
        name = (
            f"C={self.c:g} {'bal' if self.balanced else 'unw'} knn={self.knn_weight:g} budget={self.budget:g}"
        )
        return name + (" +windows" if self.chunks else "")


CONFIGS = (
    Config(2.0, True, 0.3), Config(2.0, True, 0.3, budget=0.03), Config(2.0, True, 0.3, budget=0.05),
    Config(1.0, True, 0.3, budget=0.03), Config(4.0, True, 0.3, budget=0.03), Config(2.0, True, 0.0, budget=0.03),
)  # fmt: skip


def scores(
    cfg: Config,
    x_fit: npt.NDArray[np.float32],
    y_fit: npt.NDArray[np.int8],
    x: npt.NDArray[np.float32],
    chunk_x: npt.NDArray[np.float32],
    owner: npt.NDArray[np.int64],
) -> npt.NDArray[np.float64]:
    """Per row and label; with ``chunks`` the max over the row and its two-sentence windows."""
    weights, intercepts = fit(x_fit, y_fit, cfg.c, cfg.balanced)

    def one(features: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        p = probabilities(features, weights, intercepts)
        if cfg.knn_weight > 0:
            vote = knn_vote(x_fit[:, :DIMENSIONS], y_fit, features[:, :DIMENSIONS], cfg.k)
            p = (1 - cfg.knn_weight) * p + cfg.knn_weight * vote
        return p

    p = one(x)
    if cfg.chunks and len(owner):
        np.maximum.at(p, owner, one(chunk_x))
    return p


def held_out(cfg: Config, data: dict[str, Any], author: str) -> dict[str, float]:
    fit_rows = data["author_train"] != author
    dev_rows = data["author_dev"] != author
    eval_rows = np.concatenate([data["author_train"] == author, data["author_dev"] == author])
    x_all = np.vstack([data["x_train"], data["x_dev"]])
    y_all = np.vstack([data["y_train"], data["y_dev"]])
    hits_all = np.vstack([data["hits_train"], data["hits_dev"]])
    allowed_all = np.vstack([data["allowed_train"], data["allowed_dev"]])
    esc_all = np.concatenate([data["esc_train"], data["esc_dev"]])
    benign_all = np.concatenate([data["benign_train"], data["benign_dev"]])
    x_fit, y_fit = data["x_train"][fit_rows], data["y_train"][fit_rows]
    p_dev = scores(cfg, x_fit, y_fit, data["x_dev"], data["cx_dev"], data["owner_dev"])[dev_rows]
    cx_all = np.vstack([data["cx_train"], data["cx_dev"]])
    owner_all = np.concatenate([data["owner_train"], data["owner_dev"] + len(data["x_train"])])
    p_eval = scores(cfg, x_fit, y_fit, x_all, cx_all, owner_all)[eval_rows]
    y, hits, allowed = y_all[eval_rows], hits_all[eval_rows], allowed_all[eval_rows]
    benign, esc = benign_all[eval_rows], esc_all[eval_rows]
    out: dict[str, float] = {}
    fired_any = np.zeros(len(y), dtype=bool)
    for j, label in enumerate(LABELS):
        dev_scores = np.where(data["allowed_dev"][dev_rows][:, j] == 1, p_dev[:, j], 0.0)
        t, _, _ = crisis_threshold(
            dev_scores, data["y_dev"][dev_rows][:, j], data["benign_dev"][dev_rows], budget=cfg.budget
        )
        fired = (p_eval[:, j] >= t) & (allowed[:, j] == 1)
        fired_any |= fired
        pos = y[:, j] == 1
        n = max(1, int(pos.sum()))
        out[f"sys_{label}"] = float(((fired | (hits[:, j] == 1)) & pos).sum()) / n
        out[f"clf_{label}"] = float((fired & pos).sum()) / n
        out[f"n_{label}"] = float(pos.sum())
    n_benign = max(1, int(benign.sum()))
    out["benign_fp_clf"] = float((fired_any & (benign == 1)).sum()) / n_benign
    out["benign_fp_sys"] = float(((fired_any | (esc == 1)) & (benign == 1)).sum()) / n_benign
    out["n_benign"] = float(benign.sum())
    return out


def prepare() -> dict[str, Any]:
    content = load_content()
    engine = RuleEngine(content)
    folder = content_dir("evals") / "guardrails"
    train_rows = read_split(folder, "train") + memory_control_rows(folder) + lexicon_rows(content)
    dev_rows = read_split(folder, "dev")
    data: dict[str, Any] = {}
    for name, rows in (("train", train_rows), ("dev", dev_rows)):
        matrices = rule_matrices(rows, engine, LABELS)
        hits, allowed, esc = matrices.hits, matrices.allowed, matrices.escalated
        data[f"cx_{name}"], data[f"owner_{name}"] = window_features(rows, engine)
        data |= {
            f"x_{name}": featurise(rows, engine), f"y_{name}": labels_matrix(rows, LABELS),
            f"hits_{name}": hits, f"allowed_{name}": allowed, f"esc_{name}": esc,
            f"benign_{name}": benign_vector(rows), f"author_{name}": np.array([r["_author"] for r in rows]),
        }  # fmt: skip
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    data = prepare()
    authors = [a for a in dict.fromkeys(data["author_dev"].tolist()) if a != "lexicon"]
    short = {"suicide_risk": "sui", "self_harm": "sh", "medical_emergency": "med"}
    print("| config | held-out | sui sys/clf | sh sys/clf | med sys/clf | benign esc sys (clf) |")
    print("|---|---|---|---|---|---|")
    for cfg in CONFIGS:
        means: dict[str, list[float]] = {}
        for author in authors:
            r = held_out(cfg, data, author)
            for key, value in r.items():
                means.setdefault(key, []).append(value)
            cells = [f"{r['sys_' + lb]:.2f}/{r['clf_' + lb]:.2f} (n={int(r['n_' + lb])})" for lb in short]
            print(
                f"| {cfg} | {author} | "
                + " | ".join(cells)
                + f" | {r['benign_fp_sys']:.3f} ({r['benign_fp_clf']:.3f}, n={int(r['n_benign'])}) |"
            )
        avg = {k: float(np.mean(v)) for k, v in means.items()}
        worst = min(avg_v for k, avg_v in ((k, min(v)) for k, v in means.items()) if k.startswith("sys_"))
        cells = [f"{avg['sys_' + lb]:.2f}/{avg['clf_' + lb]:.2f}" for lb in short]
        print(
            f"| **{cfg}** | **mean** (worst sys {worst:.2f}) | "
            + " | ".join(cells)
            + f" | {avg['benign_fp_sys']:.3f} ({avg['benign_fp_clf']:.3f}) |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
