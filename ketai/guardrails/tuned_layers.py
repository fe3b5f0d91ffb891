"""The signal classifier's own copy of MiniLM's last layers, fine-tuned on our labelled messages (numpy runtime).

The bundled model's first layers run unchanged (``BundledEmbedder.states``, a session cut after them); its last
``LAYERS - STATE_LAYER - 1`` layers run here instead, with weights that ``python -m ketai.guardrails.train`` fine-tuned
(torch, training only) together with the classifier head. A frozen sentence vector averages away the words
that carry indirect risk ("sorting out who gets the dog"); letting the last layers learn from our data is what
moved out-of-author suicide recall most (see ``train.py``).

The math is a standard BERT layer (12 heads, post-norm, GELU in its tanh form in both training and runtime, so the
two agree to float rounding), then mean pooling and L2 normalisation, as the base model does."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ketai.embeddings import (
    DIMENSIONS,
    LAYERS,
    STATE_LAYER,
    mean_pooled,
    model_file,
)
from ketai.errors import ContentError

FloatArray = npt.NDArray[np.float32]
HEADS = 12
LAYER_NORM_EPS = 1e-12
PARAMETERS = (
    "wq", "bq", "wk", "bk", "wv", "bv", "wo", "bo", "ln1_g", "ln1_b", "wi", "bi", "wout", "bout", "ln2_g", "ln2_b",
)  # fmt: skip
"""Per layer: query/key/value/attention-output projections (``x @ w + b``), the first layer norm, the feed-forward
pair and the second layer norm."""
ONNX_BIASES = {
    "bq": "attention.self.query.bias", "bk": "attention.self.key.bias", "bv": "attention.self.value.bias",
    "bo": "attention.output.dense.bias", "ln1_g": "attention.output.LayerNorm.weight",
    "ln1_b": "attention.output.LayerNorm.bias", "bi": "intermediate.dense.bias", "bout": "output.dense.bias",
    "ln2_g": "output.LayerNorm.weight", "ln2_b": "output.LayerNorm.bias",
}  # fmt: skip
ONNX_MATRICES = ("wq", "wk", "wv", "wo", "wi", "wout")
"""The order of a layer's weight MatMuls in the bundled graph."""

Layer = dict[str, FloatArray]


def gelu(x: FloatArray) -> FloatArray:
    out = 0.5 * x * (1.0 + np.tanh(0.7978845608028654 * (x + 0.044715 * x**3)))
    return out.astype(np.float32, copy=False)


def layer_norm(x: FloatArray, gain: FloatArray, bias: FloatArray) -> FloatArray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    out: FloatArray = (x - mean) / np.sqrt(var + LAYER_NORM_EPS) * gain + bias
    return out


def run_layer(w: Layer, h: FloatArray, mask: FloatArray) -> FloatArray:
    batch, tokens, width = h.shape
    size = width // HEADS

    def heads(t: FloatArray) -> FloatArray:
        return t.reshape(batch, tokens, HEADS, size).transpose(0, 2, 1, 3)

    q, k, v = heads(h @ w["wq"] + w["bq"]), heads(h @ w["wk"] + w["bk"]), heads(h @ w["wv"] + w["bv"])
    scores = q @ k.transpose(0, 1, 3, 2) / np.float32(np.sqrt(size))
    scores = scores + ((1.0 - mask) * np.float32(-1e9))[:, None, None, :]
    scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
    attention = scores / scores.sum(axis=-1, keepdims=True)
    context = (attention @ v).transpose(0, 2, 1, 3).reshape(batch, tokens, width)
    h = layer_norm(h + context @ w["wo"] + w["bo"], w["ln1_g"], w["ln1_b"])
    return layer_norm(h + gelu(h @ w["wi"] + w["bi"]) @ w["wout"] + w["bout"], w["ln2_g"], w["ln2_b"])


@dataclass(frozen=True)
class TunedLayers:
    layers: tuple[Layer, ...]

    def embed(self, hidden: FloatArray, mask: FloatArray) -> FloatArray:
        """Sentence vectors from the per-token output of layer ``STATE_LAYER`` (L2-normalised)."""
        h = hidden.astype(np.float32)
        m = mask.astype(np.float32)
        for layer in self.layers:
            h = run_layer(layer, h, m)
        return mean_pooled(h, m)

    def save(self, path: Path) -> None:
        arrays = {
            f"{i}.{name}": w[name].astype(np.float16)
            for i, w in enumerate(self.layers)
            for name in PARAMETERS
        }
        with path.open("wb") as handle:
            np.savez_compressed(handle, **arrays)  # type: ignore[arg-type]

    @classmethod
    def load(cls, path: Path) -> TunedLayers:
        expected = LAYERS - STATE_LAYER - 1
        with np.load(path) as data:
            try:
                layers = tuple(
                    {name: data[f"{i}.{name}"].astype(np.float32) for name in PARAMETERS}
                    for i in range(expected)
                )
            except KeyError as exc:
                raise ContentError(f"{path}: tuned layers incomplete ({exc}); retrain") from exc
        for layer in layers:
            if layer["wq"].shape != (DIMENSIONS, DIMENSIONS) or layer["wout"].shape[1] != DIMENSIONS:
                raise ContentError(f"{path}: tuned layers have the wrong shape; retrain")
        return cls(layers)


def bundled_layers() -> TunedLayers:
    """The bundled model's own last layers (int8 weights dequantised): where fine-tuning starts."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(model_file())).graph
    initial = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    matrices = [
        node.input[1] for node in graph.node if node.op_type == "MatMul" and f"{node.input[1]}_q" in initial
    ]
    if len(matrices) != LAYERS * len(ONNX_MATRICES):
        raise ContentError("the bundled embedding model's layout is not the one the tuned layers expect")

    def dequantised(name: str) -> FloatArray:
        out: FloatArray = initial[f"{name}_q"].astype(np.float32) * initial[f"{name}_scale"].astype(
            np.float32
        )
        return out

    layers: list[Layer] = []
    for index in range(STATE_LAYER + 1, LAYERS):
        names = matrices[index * len(ONNX_MATRICES) : (index + 1) * len(ONNX_MATRICES)]
        layer = {key: dequantised(name) for key, name in zip(ONNX_MATRICES, names, strict=True)}
        prefix = f"inner.encoder.layer.{index}."
        layer |= {key: initial[prefix + name].astype(np.float32) for key, name in ONNX_BIASES.items()}
        layers.append(layer)
    return TunedLayers(tuple(layers))


_PACKED = frozenset({"wq", "bq", "wk", "bk", "wv", "bv"})
"""The projections ``Attention`` takes as one packed matrix and bias (query, key, value side by side)."""


def _layer_nodes(index: int, layer: Layer, source: str) -> tuple[list[Any], list[Any], str]:
    """ONNX nodes and initializers for one layer, reading ``source`` and the ``mask`` input.

    onnxruntime's fused CPU kernels (``com.microsoft`` domain) do the work: ``Attention`` (the three projections as
    one packed matrix, the 12 heads, masking and softmax), ``SkipLayerNormalization`` (residual, bias and layer
    norm in one pass) and ``FastGelu`` (the tanh GELU with its bias). Same math as ``run_layer``."""
    from onnx import helper, numpy_helper

    p = f"tuned{index}_"
    weights = {k: layer[k] for k in PARAMETERS if k not in _PACKED}
    weights["wqkv"] = np.concatenate([layer["wq"], layer["wk"], layer["wv"]], axis=1)
    weights["bqkv"] = np.concatenate([layer["bq"], layer["bk"], layer["bv"]])
    inits = [numpy_helper.from_array(w.astype(np.float32), p + name) for name, w in weights.items()]
    n = helper.make_node
    ms = "com.microsoft"
    nodes = [
        n("Attention", [source, p + "wqkv", p + "bqkv", "mask"], [p + "c"], domain=ms, num_heads=HEADS),
        n("MatMul", [p + "c", p + "wo"], [p + "o"]),
        n("SkipLayerNormalization", [p + "o", source, p + "ln1_g", p + "ln1_b", p + "bo"], [p + "h1"], domain=ms,
          epsilon=LAYER_NORM_EPS),
        n("MatMul", [p + "h1", p + "wi"], [p + "f0"]),
        n("FastGelu", [p + "f0", p + "bi"], [p + "f1"], domain=ms),
        n("MatMul", [p + "f1", p + "wout"], [p + "f2"]),
        n("SkipLayerNormalization", [p + "f2", p + "h1", p + "ln2_g", p + "ln2_b", p + "bout"], [p + "out"],
          domain=ms, epsilon=LAYER_NORM_EPS),
    ]  # fmt: skip
    return nodes, inits, p + "out"


def onnx_graph(tuned: TunedLayers) -> bytes:
    """The tuned layers as one ONNX model (inputs ``hidden`` [batch, tokens, 384] and ``mask`` [batch, tokens],
    int32, 1 for real tokens; output ``tuned_hidden``), so onnxruntime runs them with its fused kernels: about
    half the time of the numpy loop above, which stays as the reference the tests compare against."""
    import onnx
    from onnx import TensorProto, helper

    nodes: list[Any] = []
    inits: list[Any] = []
    source = "hidden"
    for index, layer in enumerate(tuned.layers):
        layer_nodes, layer_inits, source = _layer_nodes(index, layer, source)
        nodes += layer_nodes
        inits += layer_inits
    nodes.append(helper.make_node("Identity", [source], ["tuned_hidden"]))
    graph = helper.make_graph(
        nodes,
        "ketai_tuned_layers",
        [
            helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["batch", "tokens", DIMENSIONS]),
            helper.make_tensor_value_info("mask", TensorProto.INT32, ["batch", "tokens"]),
        ],
        [helper.make_tensor_value_info("tuned_hidden", TensorProto.FLOAT, ["batch", "tokens", DIMENSIONS])],
        initializer=inits,
    )
    opsets = [helper.make_opsetid("", 20), helper.make_opsetid("com.microsoft", 1)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="ketai")
    model.ir_version = 9
    onnx.checker.check_model(model)
    serialised: bytes = model.SerializeToString()
    return serialised
