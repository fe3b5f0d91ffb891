"""The signal classifier's own copy of MiniLM's last layers, fine-tuned on our labelled messages (numpy runtime).

The bundled model's first layers run unchanged (``BundledEmbedder.states``, a session cut after them); its last
``LAYERS - STATE_LAYER - 1`` layers run here instead, with weights that ``python -m ketai.guardrails.train`` fine-tuned
(torch, training only) together with the classifier head. A frozen sentence vector averages away the words
that carry indirect risk ("sorting out who gets the dog"); letting the last layers learn from our data is what
moved out-of-author suicide recall most (see ``train.py``).

The math is a standard BERT layer (12 heads, post-norm, GELU in its tanh form in both training and runtime, so the
two agree to float rounding), then mean pooling and L2 normalisation, as the base model does."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ketai.embeddings import (
    DIMENSIONS,
    LAYERS,
    SCREEN_THREADS,
    STATE_LAYER,
    cpu_session,
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


def _layer_nodes(index: int, layer: Layer, source: str) -> tuple[list[Any], list[Any], str]:
    """ONNX nodes and initializers for one layer, reading ``source`` and the ``mask_bias`` input."""
    from onnx import helper, numpy_helper

    p = f"tuned{index}_"
    inits = [numpy_helper.from_array(layer[name].astype(np.float32), p + name) for name in PARAMETERS]
    n = helper.make_node
    nodes = [
        n("MatMul", [source, p + "wq"], [p + "q0"]), n("Add", [p + "q0", p + "bq"], [p + "q1"]),
        n("MatMul", [source, p + "wk"], [p + "k0"]), n("Add", [p + "k0", p + "bk"], [p + "k1"]),
        n("MatMul", [source, p + "wv"], [p + "v0"]), n("Add", [p + "v0", p + "bv"], [p + "v1"]),
        n("Reshape", [p + "q1", "heads_shape"], [p + "q2"]), n("Transpose", [p + "q2"], [p + "q"], perm=[0, 2, 1, 3]),
        n("Reshape", [p + "k1", "heads_shape"], [p + "k2"]), n("Transpose", [p + "k2"], [p + "kt"], perm=[0, 2, 3, 1]),
        n("Reshape", [p + "v1", "heads_shape"], [p + "v2"]), n("Transpose", [p + "v2"], [p + "v"], perm=[0, 2, 1, 3]),
        n("MatMul", [p + "q", p + "kt"], [p + "s0"]), n("Mul", [p + "s0", "attention_scale"], [p + "s1"]),
        n("Add", [p + "s1", "mask_bias"], [p + "s2"]), n("Softmax", [p + "s2"], [p + "a"], axis=-1),
        n("MatMul", [p + "a", p + "v"], [p + "c0"]), n("Transpose", [p + "c0"], [p + "c1"], perm=[0, 2, 1, 3]),
        n("Reshape", [p + "c1", "width_shape"], [p + "c2"]),
        n("MatMul", [p + "c2", p + "wo"], [p + "o0"]), n("Add", [p + "o0", p + "bo"], [p + "o1"]),
        n("Add", [source, p + "o1"], [p + "r1"]),
        n("LayerNormalization", [p + "r1", p + "ln1_g", p + "ln1_b"], [p + "h1"], axis=-1, epsilon=LAYER_NORM_EPS),
        n("MatMul", [p + "h1", p + "wi"], [p + "f0"]), n("Add", [p + "f0", p + "bi"], [p + "f1"]),
        n("Gelu", [p + "f1"], [p + "f2"], approximate="tanh"),
        n("MatMul", [p + "f2", p + "wout"], [p + "f3"]), n("Add", [p + "f3", p + "bout"], [p + "f4"]),
        n("Add", [p + "h1", p + "f4"], [p + "r2"]),
        n("LayerNormalization", [p + "r2", p + "ln2_g", p + "ln2_b"], [p + "out"], axis=-1, epsilon=LAYER_NORM_EPS),
    ]  # fmt: skip
    return nodes, inits, p + "out"


def onnx_graph(tuned: TunedLayers) -> bytes:
    """The tuned layers as one ONNX model (inputs ``hidden`` [batch, tokens, 384] and ``mask_bias`` [batch, 1, 1,
    tokens]; output ``tuned_hidden``), so onnxruntime runs them with its threaded kernels: about half the time of
    the numpy loop above, which stays as the reference the training check compares against."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    size = DIMENSIONS // HEADS
    constants = [
        numpy_helper.from_array(np.array([0, 0, HEADS, size], dtype=np.int64), "heads_shape"),
        numpy_helper.from_array(np.array([0, 0, DIMENSIONS], dtype=np.int64), "width_shape"),
        numpy_helper.from_array(np.array(1.0 / np.sqrt(size), dtype=np.float32), "attention_scale"),
    ]
    nodes: list[Any] = []
    inits: list[Any] = list(constants)
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
            helper.make_tensor_value_info("mask_bias", TensorProto.FLOAT, ["batch", 1, 1, "tokens"]),
        ],
        [helper.make_tensor_value_info("tuned_hidden", TensorProto.FLOAT, ["batch", "tokens", DIMENSIONS])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)], producer_name="ketai")
    model.ir_version = 9
    onnx.checker.check_model(model)
    serialised: bytes = model.SerializeToString()
    return serialised


class TunedEncoder:
    """Runs ``TunedLayers`` in onnxruntime (built in memory from the weights; nothing is written to disk)."""

    def __init__(self, tuned: TunedLayers, threads: int | None = None) -> None:
        self._session = cpu_session(onnx_graph(tuned), threads or SCREEN_THREADS)
        self._lock = threading.Lock()

    def embed(self, hidden: FloatArray, mask: FloatArray) -> FloatArray:
        m = mask.astype(np.float32)
        bias = ((1.0 - m) * np.float32(-1e9))[:, None, None, :].astype(np.float32)
        with self._lock:
            (out,) = self._session.run(
                None, {"hidden": hidden.astype(np.float32, copy=False), "mask_bias": bias}
            )
        return mean_pooled(out, m)
