"""System-level leave-one-author-out study of input screening.

    .venv/bin/python benchmarks/loao_guardrails.py sv gx cl nv

For each author named: retrain the signal classifier with the real pipeline (``python -m ketai.guardrails.train``)
on every labelled file except that author's (test files are never used), then screen the author's messages with
the full input screening (rules, lexicons, classifier, n-gram models) and print crisis recall, crisis
under-escalation and benign false escalation. The rules were written by us, mostly before these authors'
messages existed, so this is the closest thing we have to a new writer's messages at a clinic.
About two minutes per author on a 2-core machine. Artifacts go to a temporary folder; nothing in the repo
changes.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from ketai.content.paths import content_dir
from ketai.embeddings import shared_embedder
from ketai.evals.guardrails import score_messages
from ketai.guardrails import KetaiGuardrails
from ketai.guardrails.classifier import ARTIFACT_NAME, SignalClassifier
from ketai.guardrails.loader import load_content


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("authors", nargs="+", help="author codes (the <author> of *_extra_<author>.jsonl)")
    args = parser.parse_args()
    data = content_dir("evals") / "guardrails"
    content = load_content()
    print("| held-out author | messages | crisis under-escalated | suicide recall | self-harm recall "
          "| medical recall | benign escalated |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for author in args.authors:
        own = [data / f"train_extra_{author}.jsonl", data / f"dev_extra_{author}.jsonl"]
        if not all(p.exists() for p in own):
            print(f"no files for author {author!r}", file=sys.stderr)
            return 2
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "data"
            folder.mkdir()
            for path in data.glob("*.jsonl"):
                if path not in own and "test" not in path.name:
                    (folder / path.name).symlink_to(path)
            out = Path(tmp) / ARTIFACT_NAME
            subprocess.run(
                [sys.executable, "-m", "ketai.guardrails.train", "--data", str(folder), "--out", str(out)],
                check=True,
                capture_output=True,
            )
            classifier = SignalClassifier.load(out, shared_embedder())
        guardrails = KetaiGuardrails(content, classifier=classifier)
        rows = [
            json.loads(line) for path in own for line in path.read_text(encoding="utf-8").splitlines() if line
        ]
        report = score_messages(guardrails, rows)
        crisis = report["crisis_signals"]
        print(
            f"| {author} | {report['n']} | {report['crisis_under_escalation_rate']:.3f} "
            f"| {crisis['suicide_risk']['recall']:.3f} | {crisis['self_harm']['recall']:.3f} "
            f"| {crisis['medical_emergency']['recall']:.3f} | {report['benign_false_escalation_rate']:.3f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
