"""Train the signal classifier: ``python -m ketai.guardrails.train``.

Reproducible: fixed seed, inputs hashed into the artifact. The final weights
come from every labelled single message we wrote (``train.jsonl``, ``dev.jsonl`` and every
``{train,dev}_extra_<author>.jsonl``), the example sentences in ``guardrails/lexicons`` and the harmless turns
of the memory controls. Test files are never read.

Thresholds are chosen on **out-of-author** scores: the authors are dealt into ``OOA_FOLDS`` groups and each
group's messages are scored by models fitted without that group, so every threshold is set on phrasing the models
have never seen - the situation at a clinic. (Thresholds chosen on a dev split written by the same authors as
train were far too confident: on a new author's messages suicide recall fell from ~0.95 to ~0.7.)

The embedding part is MiniLM's last three layers (two until 2026-11-27) fine-tuned together with a one-hidden-layer head
(``train_tuned.py``, torch, ``EPOCHS`` passes). With a quarter of the authors held out, at a 3% benign budget, the
head alone found 0.79 of suicide-risk messages against 0.54 for the five averaged networks over the frozen
sentence vector it replaced (self-harm at 1%: 0.92 vs 0.82; medical emergency at 1%: 0.96 vs 0.88; emergency level
at 2%: 0.85 vs 0.59), and inside the runtime blend 0.84 against 0.78 for the previous design
(``benchmarks/study_tuned_layers.py``). The n-gram models then add less, so they now carry half of the crisis
scores instead of two thirds (best of 1/3, 1/2, 2/3 on the same split).

Crisis signals (suicide risk, self-harm, medical emergency) get a recall-first threshold: the highest one at which
the classifier alone (where runtime lets it speak) finds ``RECALL_TARGET`` of the out-of-author positives, provided
it escalates at most ``BENIGN_BUDGET`` of the benign messages; the other labels maximise F1. Scored without the
rules on purpose: the rules were written while reading our data, so a combined score would switch the classifier
off exactly where it is the safety net.

torch (the ``train`` extra) and scikit-learn are only needed here; the runtime uses numpy with the exported
weights, and training checks that the numpy forward pass reproduces torch's.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from ketai.content.paths import content_dir
from ketai.embeddings import MODEL_ID, mean_pooled, shared_embedder
from ketai.guardrails.classifier import (
    ARTIFACT_NAME,
    EMERGENCY_LABEL,
    PHASE_KEYS,
    ROLE_KEYS,
    NeuralHead,
    blend,
    context_features,
    data_sha256,
    knn_vote,
)
from ketai.guardrails.lexical import LEXICAL_ARTIFACT_NAME
from ketai.guardrails.loader import load_content
from ketai.guardrails.rules import RuleEngine
from ketai.guardrails.train_data import (
    MEMORY_TRAIN,
    RuleMatrices,
    context_matrix,
    labels_matrix,
    lexicon_rows,
    memory_control_rows,
    read_rows,
    read_split,
    rule_matrices,
    split_files,
)
from ketai.guardrails.train_lexical import fit_lexical
from ketai.guardrails.train_tuned import (
    EPOCHS,
    HIDDEN_UNITS,
    WEIGHT_DECAY,
    States,
    cache_states,
    fit_tuned,
    tuned_features,
)
from ketai.guardrails.tuned_layers import TunedLayers
from ketai.models import Role, SignalName

__all__ = ["f_beta", "fit", "probabilities", "read_rows"]

SEED = 20261127
KNN_WEIGHT = 0.3
KNN_K = 10
KNN_BANK_NAME = "signal_knn.npz"
HEAD_NAME = "signal_head.npz"
TUNED_NAME = "signal_layers.npz"
OOA_FOLDS = 4
"""Out-of-author folds: authors dealt (seeded shuffle) into this many groups. Whole groups held out at once are a
little harsher than leaving one author out; four fine-tunings (plus the final one) take about 80 minutes on two
cores with three tuned layers (32 with two). The 0.3 kNN vote was chosen by leave-one-author-out (train_loao.py,
linear heads). Its vectors are the mean-pooled output of the last frozen layer, which screening computes anyway,
so the base model's own last layers never run when a message is screened. ``benchmarks/study_tuned_layers.py`` (a
quarter of the authors held out, suicide recall at 3% benign, blend with n-grams 1/2; two tuned layers): no kNN
0.866, kNN on the bundled sentence vector 0.887, on the frozen layer's pooled output 0.884, on the tuned vector
0.866. With three tuned layers (``STATE_LAYER = 2``, shipped since 2026-11-27 evening) the same study read suicide
0.891, self-harm 0.971, medical 0.975 and emergency level 0.919, against 0.884 / 0.962 / 0.967 / 0.880 for two."""
LEXICAL_WEIGHT = 0.5
"""Crisis labels and ``level_emergency``: tuned head (with kNN) 1/2, word and character n-grams 1/4 each. With
the frozen head the n-grams carried 2/3 (leave-one-author-out, ``train_loao.py``); the tuned head is as strong
as the pair, and 1/2 was the best of 1/3, 1/2, 2/3 for suicide risk and the emergency level."""
THRESHOLD_GRID = tuple(round(x, 3) for x in np.arange(0.10, 0.951, 0.025))
THRESHOLD_FLOOR = 0.40
CRISIS_FLOOR = 0.15
RECALL_TARGET = 0.95
BENIGN_BUDGET = 0.02
"""Per crisis label: share of benign out-of-author messages it may escalate. Our benign pool is mostly hard
look-alikes written to share crisis vocabulary, so ordinary session talk is escalated far less often."""
LABEL_BUDGETS = {
    SignalName.SUICIDE_RISK.value: 0.03,
    SignalName.MEDICAL_EMERGENCY.value: 0.01,
    SignalName.SELF_HARM.value: 0.01,
}
"""Suicide risk, the signal most often worded indirectly, may spend more of the false-alarm budget: a missed
crisis is the worst error, and a suicide false alarm leads to screening questions, not an emergency. Medical
emergency and self-harm spend less: the rules already find most of them (0.86-1.0 on writers the system had not
seen), so the classifier's last low-confidence catches cost many false alarms each. On seven unseen writers
(w1-w7, scored before they were added), raising the medical bar from 0.2 to 0.35 removed 12 of ~930 benign
escalations - each a false *emergency* - for one under-escalated crisis message."""
EMERGENCY_FLOOR = 0.5
NEVER_FROM_CLASSIFIER = frozenset({SignalName.PROMPT_INJECTION.value, SignalName.ADVERSE_EFFECT.value})
"""Prompt injection is left to the rules: a false positive would only add noise."""
OTHER_BUDGET = 0.004
"""Non-crisis signals that escalate to companion or above (dosing, medication, substances, companion absent,
psychosis, abuse, harm to others, unsafe activity): the classifier alone may escalate at most this share of
benign out-of-author messages per label. Out of author, these heads mistook ordinary session talk ("troche
under his tongue now", "took my sertraline like always") for requests; the rules still catch the clear cases."""
CRISIS_LABELS = frozenset(
    {SignalName.SUICIDE_RISK.value, SignalName.SELF_HARM.value, SignalName.MEDICAL_EMERGENCY.value}
)


ESCALATING_LABELS = frozenset(
    {
        SignalName.DOSING_REQUEST.value,
        SignalName.SUBSTANCE_MIX.value,
        SignalName.MEDICATION_CHANGE.value,
        SignalName.PSYCHOSIS_OR_SEVERE_DISTRESS.value,
        SignalName.COMPANION_ABSENT.value,
        SignalName.HARM_TO_OTHERS.value,
        SignalName.ABUSE_OR_UNSAFE_HOME.value,
        SignalName.UNSAFE_ACTIVITY.value,
    }
)


def fit(
    x: npt.NDArray[np.float32], y: npt.NDArray[np.int8], c: float, balanced: bool = True
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
            C=c,
            class_weight="balanced" if balanced else None,
            solver="liblinear",
            random_state=SEED,
            max_iter=2000,
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


def author_folds(authors: npt.NDArray[np.str_]) -> list[set[str]]:
    names = sorted(set(authors.tolist()) - UNHELD)
    order = np.random.default_rng(SEED).permutation(len(names))
    return [{names[i] for i in order[k::OOA_FOLDS]} for k in range(OOA_FOLDS)]


def f_beta(tp: int, fp: int, fn: int, beta: float) -> float:
    if tp == 0:
        return 0.0
    precision, recall = tp / (tp + fp), tp / (tp + fn)
    return (1 + beta**2) * precision * recall / (beta**2 * precision + recall)


def recall_and_benign_rate(
    scores: npt.NDArray[np.float64],
    positive: npt.NDArray[np.int8],
    benign: npt.NDArray[np.int8],
    threshold: float,
) -> tuple[float, float]:
    """The share of positives and of benign rows scored at or above ``threshold``."""
    fired = scores >= threshold
    n_pos, n_benign = max(1, int(positive.sum())), max(1, int(benign.sum()))
    return float((fired & (positive == 1)).sum()) / n_pos, float((fired & (benign == 1)).sum()) / n_benign


def crisis_threshold(
    scores: npt.NDArray[np.float64],
    positive: npt.NDArray[np.int8],
    benign: npt.NDArray[np.int8],
    recall_target: float = RECALL_TARGET,
    budget: float = BENIGN_BUDGET,
) -> tuple[float, float, float]:
    """(threshold, recall, benign rate): the highest threshold reaching the recall target within the benign
    budget; if none does, the lowest threshold still within the budget (best recall affordable)."""
    best: tuple[float, float, float] | None = None
    for t in sorted(THRESHOLD_GRID, reverse=True):
        if t < CRISIS_FLOOR:
            break
        recall, rate = recall_and_benign_rate(scores, positive, benign, t)
        if rate > budget:
            break
        best = (float(t), recall, rate)
        if recall >= recall_target:
            break
    return best if best is not None else (1.01, 0.0, 0.0)


def choose_thresholds(
    probs: npt.NDArray[np.float64],
    y: npt.NDArray[np.int8],
    allowed: npt.NDArray[np.int8],
    benign: npt.NDArray[np.int8],
    labels: list[str],
    floors: dict[str, float] | None = None,
) -> tuple[dict[str, float], dict[str, float]]:
    """Per label, the threshold for the classifier alone (where runtime allows it) on pooled dev; a crisis label's
    threshold is held at no lower than its ``floors`` entry, and its metrics are the ones at the held bar."""
    thresholds: dict[str, float] = {}
    metrics: dict[str, float] = {}
    n_benign = max(1, int(benign.sum()))
    for j, label in enumerate(labels):
        if label in NEVER_FROM_CLASSIFIER:
            thresholds[label] = 1.01
            continue
        scores = np.where(allowed[:, j] == 1, probs[:, j], 0.0)
        if label in CRISIS_LABELS:
            t, recall, rate = crisis_threshold(
                scores, y[:, j], benign, budget=LABEL_BUDGETS.get(label, BENIGN_BUDGET)
            )
            floor = (floors or {}).get(label)
            if floor is not None and floor > t:
                t = floor
                recall, rate = recall_and_benign_rate(scores, y[:, j], benign, t)
            thresholds[label] = t
            metrics[f"dev_recall_{label}"], metrics[f"dev_benign_rate_{label}"] = round(recall, 4), rate
            continue
        low = max(THRESHOLD_FLOOR, EMERGENCY_FLOOR) if label == EMERGENCY_LABEL else THRESHOLD_FLOOR
        best = (0.0, 1.01)
        for t in THRESHOLD_GRID:
            if t < low:
                continue
            predicted = (scores >= t).astype(np.int8)
            tp = int((predicted & y[:, j]).sum())
            fp = int((predicted & (1 - y[:, j])).sum())
            fn = int(((1 - predicted) & y[:, j]).sum())
            score = f_beta(tp, fp, fn, 1.0)
            if score > best[0] + 1e-9:
                best = (score, float(t))
        threshold = best[1]
        if label in ESCALATING_LABELS:
            # a false alarm here reaches the companion or the clinician: keep it rare on benign talk
            for t in sorted(THRESHOLD_GRID):
                if t >= threshold and float(((scores >= t) & (benign == 1)).sum()) / n_benign <= OTHER_BUDGET:
                    threshold = t
                    break
            else:
                threshold = 1.01
        thresholds[label] = threshold
        metrics[f"dev_f1_{label}"] = round(best[0], 4)
    return thresholds, metrics


EMERGENCY_OVERCALL_BUDGET = 0.12
"""Among out-of-author suicide-risk messages labelled clinician, the share the lower emergency bar may raise to
emergency. Under-calling a plan or a goodbye is the worse error; over-calling still leads to the crisis text
and screening, not to anything harmful."""


SELF_HARM_OVERCALL_BUDGET = 0.05
"""Among out-of-author self-harm messages labelled clinician (urges, a cut earlier, old scars told now), the share
the classifier's emergency reading may raise to emergency. Stricter than suicide risk's: an emergency puts the
session on hold and shows emergency numbers, and past self-harm told honestly should not be met with that."""
SELF_HARM_EMERGENCY_FLOOR = 0.5


def emergency_threshold(
    scores: npt.NDArray[np.float64], y: npt.NDArray[np.int8], labels: list[str], signal: str, budget: float
) -> tuple[float, float, float]:
    """On the rows carrying ``signal``: the lowest ``level_emergency`` bar whose over-call rate (clinician-level rows
    raised) stays within ``budget``, that rate, and the share of emergency-level rows it raises."""
    rows = y[:, labels.index(signal)] == 1
    emergency = labels.index(EMERGENCY_LABEL)
    positive = y[rows, emergency] == 1
    score = scores[rows, emergency]
    best = (1.01, 0.0, 0.0)
    for t in sorted(THRESHOLD_GRID, reverse=True):
        overcall = float(((score >= t) & ~positive).sum()) / max(1, int((~positive).sum()))
        if overcall > budget:
            break
        best = (float(t), overcall, float(((score >= t) & positive).sum()) / max(1, int(positive.sum())))
    return best


OVERRIDE_BUDGET = 0.003
"""Per crisis label: share of benign out-of-author messages that overriding the rules' soft context vetoes may
escalate (on top of everything else). About 20 of our ~7,000 held-out benign messages."""
OVERRIDE_FLOOR = 0.5


def veto_overrides(
    scores: npt.NDArray[np.float64],
    y: npt.NDArray[np.int8],
    rules: RuleMatrices,
    benign: npt.NDArray[np.int8],
    labels: list[str],
    thresholds: dict[str, float],
) -> tuple[dict[str, float], dict[str, float]]:
    """Per crisis label, the lowest probability (at least ``OVERRIDE_FLOOR`` and the label's threshold) at which
    overriding a soft context veto escalates at most ``OVERRIDE_BUDGET`` of the benign rows that the rules leave
    alone; with how many positives the rules missed it would find and how many benign rows it would escalate."""
    overrides: dict[str, float] = {}
    metrics: dict[str, float] = {}
    n_benign = max(1, int(benign.sum()))
    quiet_benign = (benign == 1) & (rules.escalated == 0)
    for label in sorted(CRISIS_LABELS):
        j = labels.index(label)
        candidates = (rules.soft_veto[:, j] == 1) & (rules.hits[:, j] == 0)
        chosen, found, false = 1.01, 0, 0
        for t in sorted(THRESHOLD_GRID, reverse=True):
            if t < max(OVERRIDE_FLOOR, thresholds.get(label, 1.01)):
                break
            fired = candidates & (scores[:, j] >= t)
            wrong = int((fired & quiet_benign).sum())
            if wrong / n_benign > OVERRIDE_BUDGET:
                break
            chosen, found, false = float(t), int((fired & (y[:, j] == 1)).sum()), wrong
        if chosen <= 1.0:
            overrides[label] = chosen
        metrics[f"override_found_{label}"], metrics[f"override_benign_{label}"] = found, false
    return overrides, metrics


DEMOTION_BUDGET = 0.002
"""Per crisis label: share of its out-of-author positives that keeping low-probability rule hits at monitor may
miss (about 5 of ~2,500 suicide-risk messages; a suicide signal at monitor still starts the screening questions)."""
DEMOTION_GRID = tuple(round(x, 3) for x in np.arange(0.01, 0.301, 0.01))
DEMOTION_RATIO = 5
"""And the demotion must spare at least this many benign messages per positive it misses: a missed crisis weighs as
much as five false alarms (out of author, suicide risk spared 8 benign messages for 2 missed at p < 0.10 and 12 for
5 at p < 0.15)."""
RECOVERABLE_DEMOTION_BUDGET = 0.01
RECOVERABLE_DEMOTION_RATIO = 3
RECOVERABLE_LABELS = frozenset(
    {
        SignalName.ADVERSE_EFFECT.value,
        SignalName.DOSING_REQUEST.value,
        SignalName.SUBSTANCE_MIX.value,
        SignalName.MEDICATION_CHANGE.value,
        SignalName.COMPANION_ABSENT.value,
        SignalName.UNSAFE_ACTIVITY.value,
        SignalName.PSYCHOSIS_OR_SEVERE_DISTRESS.value,
    }
)
"""Non-crisis signals whose rules-only hits the classifier may also keep at monitor, with a looser budget (1% of the
label's positives, 3 benign messages spared per positive lost): on our own train and dev messages the rules cause
most false alarms (204 of 247), mostly outside the crisis signals' words ("the nausea from earlier passed", "my
sister went to get water"). A demoted hit is still recorded at monitor for the clinician's review, the output policy
still refuses dose and medicine advice whatever the level, and the crisis signals keep their own strict budget.
Harm to others and abuse are not here: a missed threat is not recoverable."""


def _demotion_bar(
    scores: npt.NDArray[np.float64],
    truth: npt.NDArray[np.int8],
    fired: npt.NDArray[np.bool_],
    benign: npt.NDArray[np.int8],
    positives: int,
    budget: float,
    ratio: int,
    grid: tuple[float, ...],
) -> tuple[float, int, int]:
    """The bar on ``grid`` (rising in steps while both hold) below which keeping the ``fired`` rule hits at monitor
    loses at most ``budget`` of the ``positives`` and spares ``ratio`` benign rows per positive lost; with how many
    positives and benign rows fall below it (0.0: no bar). The bar stops at the last step that spared one more
    benign row: it never climbs through scores the data holds no benign row for."""
    chosen, lost, spared = 0.0, 0, 0
    for t in grid:
        below = fired & (scores < t)
        missed = int((below & (truth == 1)).sum())
        saved = int((below & (benign == 1)).sum())
        if missed / positives > budget or saved < ratio * missed:
            break
        if saved > spared:
            chosen, lost, spared = float(t), missed, saved
    return chosen, lost, spared


DISAVOWAL_GRID = tuple(round(x, 3) for x in np.arange(0.02, 0.701, 0.02))
"""Where the message re-reads its own dark words, the classifier's second opinion may count for more: the bar for
those messages alone (``disavowal_demotion``) may rise to 0.7, within the same budgets (counted on top of the
ordinary bar's losses)."""


def rule_demotions(
    scores: npt.NDArray[np.float64],
    y: npt.NDArray[np.int8],
    rules: RuleMatrices,
    benign: npt.NDArray[np.int8],
    labels: list[str],
) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """Per crisis (and recoverable) label, the highest bar (at most 0.3) below which keeping the rules' hit at
    monitor loses at most ``DEMOTION_BUDGET`` (``RECOVERABLE_DEMOTION_BUDGET``) of the label's positives and spares
    ``DEMOTION_RATIO`` (``RECOVERABLE_DEMOTION_RATIO``) benign rows per positive lost; then the higher bar for
    messages that re-read their own words (``RuleMatrices.disavowed``), with the same budget for what it loses
    beyond the first bar. Returns both bar maps and how many positives and benign rows fall below them."""
    demotions: dict[str, float] = {}
    disavowal: dict[str, float] = {}
    metrics: dict[str, float] = {}
    for label in sorted(CRISIS_LABELS | RECOVERABLE_LABELS):
        budget, ratio = (
            (DEMOTION_BUDGET, DEMOTION_RATIO)
            if label in CRISIS_LABELS
            else (RECOVERABLE_DEMOTION_BUDGET, RECOVERABLE_DEMOTION_RATIO)
        )
        j = labels.index(label)
        fired = rules.strong_hits[:, j] == 1
        positives = max(1, int(y[:, j].sum()))
        chosen, lost, spared = _demotion_bar(
            scores[:, j], y[:, j], fired, benign, positives, budget, ratio, DEMOTION_GRID
        )
        if chosen > 0:
            demotions[label] = chosen
        metrics[f"demotion_lost_{label}"], metrics[f"demotion_spared_benign_{label}"] = lost, spared
        above = fired & (rules.disavowed == 1) & (scores[:, j] >= chosen)
        grid = tuple(t for t in DISAVOWAL_GRID if t > chosen)
        bar, lost, spared = _demotion_bar(
            scores[:, j], y[:, j], above, benign, positives, budget, ratio, grid
        )
        if bar > chosen:
            disavowal[label] = bar
        metrics[f"disavowal_lost_{label}"], metrics[f"disavowal_spared_benign_{label}"] = lost, spared
    return demotions, disavowal, metrics


Bars = dict[str, Any]

SUICIDE_DEMOTION_FLOOR = 0.2
"""The suicide ``rule_demotion`` bar is never below this. Out-of-author scores on our own writers put the bar near
0.02, because the rules were fitted to those writers' phrasings and rarely misfire on them; on held-out writers the
rules' false suicide hits read up to 0.4 and their true ones from 0.23. 0.2 lost none of 1,420 crisis messages in
seven held-out sets, nor any on the fresh ``unseen16`` (rule 28, docs/GUARDRAILS_HISTORY.md)."""


def choose_bars(
    oof: npt.NDArray[np.float64],
    held: npt.NDArray[np.bool_],
    y: npt.NDArray[np.int8],
    rules: RuleMatrices,
    benign: npt.NDArray[np.int8],
    labels: list[str],
    floors: dict[str, float] | None = None,
) -> tuple[Bars, dict[str, float]]:
    """Every bar that depends on out-of-author scores and the rules: thresholds, veto overrides, rule demotions and
    the lower emergency bar for suicide risk (with the metrics that justify them). ``floors`` holds crisis
    thresholds up to given values before the bars that depend on them are chosen (``--floor-crisis-bars-from``)."""
    on_held = rules.subset(held)
    thresholds, metrics = choose_thresholds(oof[held], y[held], on_held.allowed, benign[held], labels, floors)
    overrides, override_metrics = veto_overrides(
        oof[held], y[held], on_held, benign[held], labels, thresholds
    )
    demotions, disavowal, demotion_metrics = rule_demotions(oof[held], y[held], on_held, benign[held], labels)
    suicide = SignalName.SUICIDE_RISK.value
    demotions[suicide] = max(demotions.get(suicide, 0.0), SUICIDE_DEMOTION_FLOOR)
    suicide_emergency, overcall, _ = emergency_threshold(
        oof[held], y[held], labels, suicide, EMERGENCY_OVERCALL_BUDGET
    )
    self_harm_emergency, self_harm_overcall, self_harm_raised = emergency_threshold(
        oof[held], y[held], labels, SignalName.SELF_HARM.value, SELF_HARM_OVERCALL_BUDGET
    )
    metrics |= override_metrics | demotion_metrics
    metrics["suicide_emergency_overcall"] = round(overcall, 4)
    metrics["self_harm_emergency_overcall"] = round(self_harm_overcall, 4)
    metrics["self_harm_emergency_raised"] = round(self_harm_raised, 4)
    bars: Bars = {
        "thresholds": thresholds,
        "veto_override": overrides,
        "rule_demotion": demotions,
        "disavowal_demotion": disavowal,
        "suicide_emergency_threshold": max(suicide_emergency, 0.3),
        "self_harm_emergency_threshold": max(self_harm_emergency, SELF_HARM_EMERGENCY_FLOOR),
    }
    return bars, metrics


def crisis_floors(artifact_path: Path | None) -> dict[str, float]:
    """The crisis thresholds of an earlier artifact, as floors for a retrain's: the out-of-author benign rate has
    not predicted held-out false alarms, so a retrain may find more crisis messages at the same bar but may not buy
    them by lowering it (rule 17 in ``docs/GUARDRAILS_HISTORY.md``)."""
    if artifact_path is None:
        return {}
    thresholds = json.loads(artifact_path.read_text(encoding="utf-8"))["thresholds"]
    return {label: float(thresholds[label]) for label in sorted(CRISIS_LABELS)}


BAR_KEYS = (
    "thresholds",
    "veto_override",
    "rule_demotion",
    "disavowal_demotion",
    "suicide_emergency_threshold",
    "self_harm_emergency_threshold",
    "rules_emergency_floor",
)


def copied_bars(artifact_path: Path) -> tuple[Bars, dict[str, float]]:
    """Every bar of an earlier artifact, and the out-of-author metrics that justified them there (marked as copied):
    a refit on more data keeps the bars it would be compared under instead of paying for four more fine-tunings."""
    artifact = json.loads(artifact_path.read_text(encoding="utf-8"))
    bars = cast(Bars, {key: artifact.get(key) for key in BAR_KEYS})
    metrics = {str(k): float(v) for k, v in artifact["metrics"].items()}
    metrics["bars_copied"] = 1.0
    return bars, metrics


def rederive_bars(
    saved: Path,
    artifact_path: Path,
    rows: list[dict[str, Any]],
    engine: RuleEngine,
    labels: list[str],
    floors: dict[str, float] | None = None,
) -> int:
    """Recompute the bars from saved out-of-author scores and write them into the artifact; the fine-tuned weights
    and every other file stay as they are. The authored messages and labels must be the ones the scores were made
    for; the lexicon examples may differ (a rules change adds some), because bars are chosen on held-out authored
    rows only and lexicon rows are never held out. The bars are computed on the saved rows, under today's rules."""
    with np.load(saved) as data:
        oof, held = data["scores"].astype(np.float64), data["held"].astype(bool)
        saved_rows = json.loads(str(data["rows"]))
        saved_labels = [str(v) for v in data["labels"]]
    saved_authored = [r["text"] for r, h in zip(saved_rows, held, strict=True) if h]
    authored = [r["text"] for r in rows if r.get("_author") not in UNHELD]
    if saved_labels != labels or saved_authored != authored:
        print(f"{saved}: scores are for other messages or labels than the current data; run a full training")
        return 2
    artifact = json.loads(artifact_path.read_text(encoding="utf-8"))
    bars, metrics = choose_bars(
        oof,
        held,
        labels_matrix(saved_rows, labels),
        rule_matrices(saved_rows, engine, labels),
        benign_vector(saved_rows),
        labels,
        floors,
    )
    artifact |= bars | {"metrics": metrics}
    artifact_path.write_text(json.dumps(artifact, indent=1) + "\n", encoding="utf-8")
    print("bars: " + json.dumps(bars))
    print("out-of-author: " + ", ".join(f"{k}={v}" for k, v in metrics.items()))
    return 0


def benign_vector(rows: list[dict[str, Any]]) -> npt.NDArray[np.int8]:
    return np.array([1 if r.get("benign") else 0 for r in rows], dtype=np.int8)


UNHELD = frozenset({"lexicon"})
"""Rows always in the fit (our lexicon examples are short, one per pattern: not an author's voice)."""


def out_of_author_scores(
    data: TrainingData, crisis_columns: list[int], lexical_columns: list[int]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """Scores of every authored row from models (tuned layers + head, kNN bank, n-gram models) fitted without its
    author's fold, through the runtime's own numpy math and blend; and which rows were held out (lexicon rows
    never are)."""
    y, authors = data.y, data.authors
    scores = np.zeros(y.shape, dtype=np.float64)
    held = np.array([a not in UNHELD for a in authors])
    for number, fold in enumerate(author_folds(authors), start=1):
        out = np.isin(authors, sorted(fold))
        inside, outside = np.flatnonzero(~out).tolist(), np.flatnonzero(out).tolist()
        tuned, head = fit_tuned(data.states, data.context, y, inside, SEED + number)
        p = head.probabilities(tuned_features(tuned, data.states, data.context, outside)).astype(np.float64)
        vote = knn_vote(data.pooled[~out], y[~out][:, crisis_columns], data.pooled[out], KNN_K)
        blend(p, crisis_columns, vote, KNN_WEIGHT)
        lexical = fit_lexical(
            [t for t, o in zip(data.texts, out, strict=True) if not o],
            y[~out][:, lexical_columns],
            [str(i) for i in lexical_columns],
        )
        lex = lexical.matrix([t for t, o in zip(data.texts, out, strict=True) if o])
        blend(p, lexical_columns, lex, LEXICAL_WEIGHT)
        scores[out] = p
        print(f"out-of-author fold {number}/{OOA_FOLDS}: {int(out.sum())} rows scored", flush=True)
    return scores, held


@dataclass(frozen=True)
class TrainingData:
    rows: list[dict[str, Any]]
    texts: list[str]
    """As screened (normalised, idioms replaced): what the runtime classifier reads."""
    states: States
    pooled: npt.NDArray[np.float32]
    """Mean-pooled, normalised ``states`` (the kNN bank's vectors)."""
    context: npt.NDArray[np.float32]
    y: npt.NDArray[np.int8]
    authors: npt.NDArray[np.str_]


def training_data(rows: list[dict[str, Any]], engine: RuleEngine, labels: list[str]) -> TrainingData:
    texts = [engine.prepare(r["text"])[0] for r in rows]
    states = cache_states(texts, shared_embedder())
    pooled = np.vstack(
        [mean_pooled(s.astype(np.float32)[None], np.ones((1, len(s)), np.float32)) for s in states]
    )
    context = context_matrix(rows)
    authors = np.array([r["_author"] for r in rows])
    return TrainingData(rows, texts, states, pooled, context, labels_matrix(rows, labels), authors)


REFERENCE_TEXTS = (
    "I have written letters to everyone and I know how I will do it tonight",
    "this traffic is killing me, I am dying to get home",
    "my lips are blue and he is not waking up",
)
"""Scored at training time and stored in the artifact: the tests check that the runtime gives the same numbers."""


def reference_scores(tuned: TunedLayers, head: NeuralHead) -> list[list[float]]:
    """The head's probabilities for ``REFERENCE_TEXTS`` as written (patient, no phase)."""
    texts = list(REFERENCE_TEXTS)
    states = shared_embedder().states(texts)
    context = np.vstack([context_features(None, Role.PATIENT) for _ in texts])
    features = np.hstack([tuned.embed(states.hidden, states.mask), context]).astype(np.float32)
    return [[round(float(v), 6) for v in row] for row in head.probabilities(features)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=content_dir("evals") / "guardrails")
    parser.add_argument("--out", type=Path, default=content_dir("guardrails") / "classifier" / ARTIFACT_NAME)
    parser.add_argument(
        "--save-oof",
        type=Path,
        help="also write the out-of-author scores and their rows here (npz, for studies)",
    )
    parser.add_argument(
        "--bars-from",
        type=Path,
        help="no fine-tuning: re-derive the rule-dependent bars (thresholds, veto override, rule demotion) from "
        "out-of-author scores saved by --save-oof of the run that wrote the artifact, e.g. after a rules change",
    )
    parser.add_argument(
        "--floor-crisis-bars-from",
        type=Path,
        help="hold the crisis thresholds (suicide risk, self-harm, medical emergency) at no lower than this "
        "artifact's, e.g. the shipped one's",
    )
    parser.add_argument(
        "--bars-like",
        type=Path,
        help="no out-of-author folds: fit once and copy every bar (and its metrics) from this artifact, e.g. the "
        "shipped one's; about a fifth of a full training (rule 24 in docs/GUARDRAILS_HISTORY.md)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=SEED,
        help="the seed of the final fit of the tuned layers and head (the out-of-author folds and the n-gram "
        "models keep theirs); another seed on the same data measures how far two fits differ (rule 32 in "
        "docs/GUARDRAILS_HISTORY.md)",
    )
    parser.add_argument(
        "--average-from-epoch",
        type=int,
        help="return the mean of the tuned weights at the end of this epoch (1-based) and every later one "
        "(stochastic weight averaging) instead of the last weights; final fit only (rule 39 in "
        "docs/GUARDRAILS_HISTORY.md)",
    )
    args = parser.parse_args(argv)
    if args.average_from_epoch is not None and not 1 <= args.average_from_epoch <= EPOCHS:
        parser.error(f"--average-from-epoch must be between 1 and {EPOCHS}")
    if args.bars_like and (args.save_oof or args.bars_from or args.floor_crisis_bars_from):
        parser.error(
            "--bars-like fits once without out-of-author scores: it takes no --save-oof, --bars-from or floors"
        )
    floors = crisis_floors(args.floor_crisis_bars_from)
    content = load_content()
    engine = RuleEngine(content)
    labels = [name.value for name in SignalName] + [EMERGENCY_LABEL]
    authored = read_split(args.data, "train") + read_split(args.data, "dev")
    rows = authored + memory_control_rows(args.data) + lexicon_rows(content)
    if args.bars_from:
        return rederive_bars(args.bars_from, args.out, rows, engine, labels, floors)
    data = training_data(rows, engine, labels)
    y, texts = data.y, data.texts
    knn_labels = sorted(CRISIS_LABELS)
    columns = [labels.index(label) for label in knn_labels]
    lexical_labels = [*knn_labels, EMERGENCY_LABEL]
    lexical_columns = [labels.index(label) for label in lexical_labels]
    if args.bars_like:
        bars, metrics = copied_bars(args.bars_like)
    else:
        oof, held = out_of_author_scores(data, columns, lexical_columns)
        rules = rule_matrices(rows, engine, labels)
        bars, metrics = choose_bars(oof, held, y, rules, benign_vector(rows), labels, floors)
    if args.save_oof:
        plain = [{k: v for k, v in r.items() if k in ("id", "text", "role", "phase", "signals", "level", "benign")}
                 for r in rows]  # fmt: skip
        np.savez_compressed(
            args.save_oof, scores=oof, held=held, labels=np.array(labels), rows=np.array(json.dumps(plain)),
            authors=data.authors,
        )  # fmt: skip
    head_path = args.out.parent / HEAD_NAME
    head_path.parent.mkdir(parents=True, exist_ok=True)
    tuned, head = fit_tuned(
        data.states, data.context, y, list(range(len(rows))), args.seed, args.average_from_epoch
    )
    head.save(head_path)
    tuned_path = args.out.parent / TUNED_NAME
    tuned.save(tuned_path)
    reference = reference_scores(TunedLayers.load(tuned_path), head)
    bank, bank_labels = data.pooled.astype(np.float16), y[:, columns]
    lexical_path = args.out.parent / LEXICAL_ARTIFACT_NAME
    lexical_path.parent.mkdir(parents=True, exist_ok=True)
    fit_lexical(texts, y[:, lexical_columns], lexical_labels).save(lexical_path)
    bank_path = args.out.parent / KNN_BANK_NAME
    bank_path.parent.mkdir(parents=True, exist_ok=True)
    with bank_path.open("wb") as handle:
        np.savez_compressed(handle, embeddings=bank, labels=bank_labels)
    files = split_files(args.data, "train") + split_files(args.data, "dev")
    if (args.data / MEMORY_TRAIN).exists():
        files.append(args.data / MEMORY_TRAIN)
    artifact = {
        "id": "signal-classifier",
        "version": 1,
        "reviewed_by": "pending-clinician-review",
        "embedding_model": MODEL_ID,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seed": args.seed,
        "average_from_epoch": args.average_from_epoch,
        "data_files": {path.name: data_sha256(path) for path in files},
        "phase_keys": list(PHASE_KEYS),
        "role_keys": list(ROLE_KEYS),
        "labels": labels,
        "weights": [],
        "intercepts": [],
        "head": HEAD_NAME,
        "head_sha256": data_sha256(head_path),
        "tuned_layers": TUNED_NAME,
        "tuned_layers_sha256": data_sha256(tuned_path),
        "reference_texts": list(REFERENCE_TEXTS),
        "reference_scores": reference,
        "thresholds": bars["thresholds"],
        "c": WEIGHT_DECAY,  # the regularisation field; for the tuned model it holds AdamW's weight decay
        "metrics": metrics,
        "knn_bank": KNN_BANK_NAME,
        "knn_bank_sha256": data_sha256(bank_path),
        "knn_labels": knn_labels,
        "knn_weight": KNN_WEIGHT,
        "knn_k": KNN_K,
        "lexical_model": LEXICAL_ARTIFACT_NAME,
        "lexical_sha256": data_sha256(lexical_path),
        "lexical_weight": LEXICAL_WEIGHT,
        "suicide_emergency_threshold": bars["suicide_emergency_threshold"],
        "self_harm_emergency_threshold": bars["self_harm_emergency_threshold"],
        # Set by hand (rule 33), never derived: kept from the artifact a refit copies its bars from.
        "rules_emergency_floor": bars.get("rules_emergency_floor"),
        "veto_override": bars["veto_override"],
        "rule_demotion": bars["rule_demotion"],
        "disavowal_demotion": bars["disavowal_demotion"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(artifact, indent=1) + "\n", encoding="utf-8")
    print(f"trained on {len(rows)} rows ({', '.join(p.name for p in files)})")
    print(
        f"wrote {args.out} (epochs={EPOCHS}, hidden={HIDDEN_UNITS}; thresholds: "
        + ", ".join(f"{k}={v}" for k, v in bars["thresholds"].items())
    )
    print("out-of-author: " + ", ".join(f"{k}={v}" for k, v in metrics.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
