"""Output-policy classifier features: the full six-layer embedding against the pooled layer-3 state.

Run: ``.venv/bin/python benchmarks/study_output_features.py``. Reads only ``outputs_train.jsonl`` and our scripted
prompts (the training rows of ``ketai.guardrails.train_output``); prints each rule's best out-of-writer F1.5 over
the training threshold grid for both feature sets at two regularisation strengths, then the per-draft time of
each encoding on ``outputs_test.jsonl`` texts (timing only; nothing there is scored). Nothing is written.
"""

from __future__ import annotations

import time

import numpy as np
import numpy.typing as npt

from ketai.content.paths import content_dir
from ketai.embeddings import DIMENSIONS, mean_pooled, shared_embedder
from ketai.guardrails import text as textmod
from ketai.guardrails import train_output
from ketai.guardrails.loader import load_content
from ketai.guardrails.output_classifier import OUTPUT_RULES
from ketai.guardrails.train import f_beta, read_rows


def state_features(texts: list[str], batch: int = 32) -> npt.NDArray[np.float32]:
    embedder = shared_embedder()
    parts = []
    for start in range(0, len(texts), batch):
        states = embedder.states(texts[start : start + batch])
        parts.append(mean_pooled(states.hidden, states.mask))
    return np.concatenate(parts)


def best_f_beta(scores: npt.NDArray[np.float64], truth: npt.NDArray[np.int8]) -> float:
    results = []
    for t in train_output.GRID:
        if t < train_output.FLOOR:
            continue
        predicted = scores >= t
        results.append(
            f_beta(
                int((predicted & (truth == 1)).sum()),
                int((predicted & (truth == 0)).sum()),
                int((~predicted & (truth == 1)).sum()),
                train_output.BETA,
            )
        )
    return max(results)


def main() -> int:
    folder = content_dir("evals") / "guardrails"
    scripted = train_output.scripted_rows(content_dir("prompts") / train_output.SCRIPTED_FOLDER)
    rows = read_rows(folder / "outputs_train.jsonl") + scripted * train_output.SCRIPTED_REPEATS
    full = train_output.featurise(rows)
    substitutions = textmod.Substitutions.build(load_content().normalise.substitutions)
    texts = [textmod.normalise(r["text"], substitutions) for r in rows]
    state = np.hstack([state_features(texts), full[:, DIMENSIONS:]]).astype(np.float32)
    truth = np.array(
        [
            [1 if r.get("expected") == "replace" and r.get("rule") == k else 0 for k in OUTPUT_RULES]
            for r in rows
        ],
        dtype=np.int8,
    )
    writers = [train_output.writer_of(r) for r in rows]
    for name, features in (("full", full), ("layer-3 state", state)):
        for c in (train_output.C, 16.0):
            oof = train_output.out_of_writer(features, truth, writers, c)
            scores = [best_f_beta(oof[:, j], truth[:, j]) for j in range(len(OUTPUT_RULES))]
            per_rule = " ".join(
                f"{rule}={score:.3f}" for rule, score in zip(OUTPUT_RULES, scores, strict=True)
            )
            print(f"{name:14s} C={c:<5} mean {np.mean(scores):.3f}  {per_rule}")
    embedder = shared_embedder()
    drafts = [str(r["text"]) for r in read_rows(folder / "outputs_test.jsonl")]
    for name, encode in (("full embed", embedder.embed), ("layer-3 state", embedder.states)):
        timings = []
        for draft in drafts:
            start = time.perf_counter()
            encode([draft])
            timings.append((time.perf_counter() - start) * 1000)
        print(
            f"{name:14s} p50 {np.percentile(timings, 50):6.2f} ms  p95 {np.percentile(timings, 95):6.2f} ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
