"""Fine-tune the classifier's copy of MiniLM's last layers together with its head (torch; training only).

Only ``train.py`` imports this module, and torch is only in the ``train`` extra (``make train`` installs it): the
runtime runs the exported weights with numpy (``tuned_layers.py``, ``classifier.NeuralHead``).

The first ``STATE_LAYER + 1`` layers stay frozen, so their per-token output is computed once per message and
cached; each epoch then runs only the tuned layers. The layers start from the bundled model's own weights (a small
learning rate keeps them near a good sentence encoder); the head (one hidden ReLU layer, a sigmoid per label)
starts from scratch with a larger one."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from ketai.embeddings import DIMENSIONS, BundledEmbedder
from ketai.guardrails.classifier import NeuralHead
from ketai.guardrails.tuned_layers import HEADS, LAYER_NORM_EPS, PARAMETERS, TunedLayers, bundled_layers

EPOCHS = 7
LAYER_LR = 6e-5
HEAD_LR = 1e-3
WEIGHT_DECAY = 0.01
BATCH = 32
HIDDEN_UNITS = 256
DROPOUT = 0.1
CACHE_BATCH = 64

States = list[npt.NDArray[np.float16]]


def cache_states(texts: list[str], embedder: BundledEmbedder) -> States:
    """Per text, the output of the frozen layers for its real tokens (float16 keeps 15k messages in ~0.3 GB)."""
    states: States = [np.zeros((0, 0), dtype=np.float16)] * len(texts)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    for start in range(0, len(order), CACHE_BATCH):
        chunk = order[start : start + CACHE_BATCH]
        batch = embedder.states([texts[i] for i in chunk])
        for row, index in enumerate(chunk):
            length = int(batch.mask[row].sum())
            states[index] = batch.hidden[row, :length].astype(np.float16)
    return states


def padded(states: States, rows: list[int]) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    tokens = max(states[i].shape[0] for i in rows)
    hidden = np.zeros((len(rows), tokens, states[rows[0]].shape[1]), dtype=np.float32)
    mask = np.zeros((len(rows), tokens), dtype=np.float32)
    for r, i in enumerate(rows):
        n = states[i].shape[0]
        hidden[r, :n] = states[i]
        mask[r, :n] = 1.0
    return hidden, mask


def _model(labels: int, context_width: int) -> Any:
    import torch
    from torch import nn
    from torch.nn import functional as F

    class Layer(nn.Module):
        def __init__(self, weights: dict[str, npt.NDArray[np.float32]]) -> None:
            super().__init__()
            self.p = nn.ParameterDict({k: nn.Parameter(torch.tensor(weights[k])) for k in PARAMETERS})

        def forward(self, h: Any, mask: Any) -> Any:
            p = self.p
            batch, tokens, width = h.shape
            size = width // HEADS

            def heads(t: Any) -> Any:
                return t.view(batch, tokens, HEADS, size).transpose(1, 2)

            q, k, v = heads(h @ p["wq"] + p["bq"]), heads(h @ p["wk"] + p["bk"]), heads(h @ p["wv"] + p["bv"])
            scores = q @ k.transpose(-1, -2) / math.sqrt(size) + ((1.0 - mask) * -1e9)[:, None, None, :]
            context = (scores.softmax(-1) @ v).transpose(1, 2).reshape(batch, tokens, width)
            h = F.layer_norm(
                h + context @ p["wo"] + p["bo"], (width,), p["ln1_g"], p["ln1_b"], LAYER_NORM_EPS
            )
            feed = F.gelu(h @ p["wi"] + p["bi"], approximate="tanh") @ p["wout"] + p["bout"]
            return F.layer_norm(h + feed, (width,), p["ln2_g"], p["ln2_b"], LAYER_NORM_EPS)

    class Tuned(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = nn.ModuleList([Layer(w) for w in bundled_layers().layers])
            self.fc1 = nn.Linear(DIMENSIONS + context_width, HIDDEN_UNITS)
            self.fc2 = nn.Linear(HIDDEN_UNITS, labels)
            self.drop = nn.Dropout(DROPOUT)

        def forward(self, h: Any, mask: Any, context: Any) -> Any:
            for layer in self.layers:
                h = layer(h, mask)
            pooled = (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
            features = torch.cat([F.normalize(pooled, dim=-1), context], dim=-1)
            return self.fc2(self.drop(F.relu(self.fc1(features))))

    return Tuned()


def fit_tuned(
    states: States,
    context: npt.NDArray[np.float32],
    y: npt.NDArray[np.int8],
    rows: list[int],
    seed: int,
    average_from: int | None = None,
) -> tuple[TunedLayers, NeuralHead]:
    """Fine-tune on ``rows`` (indices into ``states``/``context``/``y``); return numpy weights for the runtime.

    ``average_from`` (1-based epoch): return the mean of the weights at the end of that epoch and every later one
    (stochastic weight averaging, torch's ``AveragedModel``) instead of the last weights. The learning rates are
    constant, so the last weights carry the noise of the last batches; the mean of several ends of epoch is meant
    to depend less on the seed (rule 39 in docs/GUARDRAILS_HISTORY.md). Nothing runs longer at screening time."""
    import torch
    from torch.nn import functional as F
    from torch.optim.swa_utils import AveragedModel

    if average_from is not None and not 1 <= average_from <= EPOCHS:
        raise ValueError(f"average_from must be an epoch between 1 and {EPOCHS}, not {average_from}")

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = _model(y.shape[1], context.shape[1])
    head_parameters = [*model.fc1.parameters(), *model.fc2.parameters()]
    optimiser = torch.optim.AdamW(
        [{"params": model.layers.parameters(), "lr": LAYER_LR}, {"params": head_parameters, "lr": HEAD_LR}],
        weight_decay=WEIGHT_DECAY,
    )
    targets = torch.tensor(y, dtype=torch.float32)
    contexts = torch.tensor(context, dtype=torch.float32)
    averaged: Any = None
    for epoch in range(1, EPOCHS + 1):
        model.train()
        shuffled = rng.permutation(np.array(rows))
        # batches of similar length (little padding), in random order
        pools = [
            sorted(shuffled[i : i + 32 * BATCH], key=lambda j: states[j].shape[0])
            for i in range(0, len(shuffled), 32 * BATCH)
        ]
        batches = [pool[i : i + BATCH] for pool in pools for i in range(0, len(pool), BATCH)]
        for b in (batches[i] for i in rng.permutation(len(batches))):
            hidden, mask = padded(states, list(b))
            logits = model(torch.tensor(hidden), torch.tensor(mask), contexts[b])
            loss: Any = F.binary_cross_entropy_with_logits(logits, targets[b])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        if average_from is not None and epoch >= average_from:
            if averaged is None:
                averaged = AveragedModel(model)
            averaged.update_parameters(model)
    if averaged is not None:
        model = averaged.module  # no batch norm anywhere, so the averaged weights need no statistics pass
    model.eval()
    layers = tuple(
        {k: v.detach().numpy().astype(np.float32) for k, v in layer.p.items()} for layer in model.layers
    )
    w1 = model.fc1.weight.detach().numpy().T[None].astype(np.float32)
    b1 = model.fc1.bias.detach().numpy()[None].astype(np.float32)
    w2 = model.fc2.weight.detach().numpy().T[None].astype(np.float32)
    b2 = model.fc2.bias.detach().numpy()[None].astype(np.float32)
    tuned, head = TunedLayers(layers), NeuralHead(w1, b1, w2, b2)
    sample = list(rows[:16])
    hidden, mask = padded(states, sample)
    with torch.no_grad():
        expected = torch.sigmoid(model(torch.tensor(hidden), torch.tensor(mask), contexts[sample])).numpy()
    got = head.probabilities(tuned_features(tuned, states, context, sample))
    if float(np.abs(expected - got).max()) > 1e-3:
        raise RuntimeError(
            "the numpy runtime does not reproduce the trained model; the two forward passes differ"
        )
    return tuned, head


def tuned_features(
    tuned: TunedLayers, states: States, context: npt.NDArray[np.float32], rows: list[int]
) -> npt.NDArray[np.float32]:
    """Runtime features (tuned sentence vector + context) of ``rows``, computed with the numpy runtime."""
    out = np.zeros((len(rows), tuned.layers[0]["wq"].shape[0] + context.shape[1]), dtype=np.float32)
    order = sorted(range(len(rows)), key=lambda r: states[rows[r]].shape[0])
    for start in range(0, len(order), 128):
        chunk = order[start : start + 128]
        hidden, mask = padded(states, [rows[r] for r in chunk])
        out[chunk] = np.hstack([tuned.embed(hidden, mask), context[[rows[r] for r in chunk]]])
    return out
