"""The signal classifier's network as one onnxruntime call, run beside the rules.

Screening a message needs two views of it from MiniLM: the pooled output of the bundled model's first layers (the
kNN vote's sentence vector) and the pooled output of the classifier's own fine-tuned last layers (the head's
input). ``screening_graph`` splices the two parts into one ONNX model with both outputs, so a message costs one
``run`` instead of two plus a numpy hand-off between them.

One call matters because of where it runs: ``in_background`` hands it to a worker thread while the caller runs the
rules (pure Python regexes, about a fifth of a screen). onnxruntime releases the GIL for the whole ``run``, so the
two overlap on the machine's two cores. A worker that needed the GIL again between two runs would wait up to
Python's switch interval (5 ms) for the rules to let go of it; that is why the layers are one graph, and why the
caller waits until the worker has started before it begins the rules.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from ketai.embeddings import (
    DIMENSIONS,
    SCREEN_THREADS,
    STATE_OUTPUT,
    BundledEmbedder,
    cpu_session,
    mean_pooled,
)
from ketai.errors import ContentError
from ketai.guardrails.tuned_layers import TunedLayers, onnx_graph

FloatArray = npt.NDArray[np.float32]
T = TypeVar("T")
TUNED_OUTPUT = "tuned_hidden"
CANDIDATE_OUTPUT = "knn_candidates"
SIMILARITY_OUTPUT = "knn_similarities"
KNN_CANDIDATES = 256
"""Bank sentences whose exact similarity is computed per message (``_candidate_nodes``)."""
QUANT_LEVELS = 63


@dataclass(frozen=True)
class Encoded:
    """Sentence vectors for a batch (both L2-normalised, one row per text)."""

    state: FloatArray
    """Mean-pooled output of the bundled model's layer ``STATE_LAYER`` (what the kNN bank holds)."""
    tuned: FloatArray
    """Mean-pooled output of the fine-tuned last layers (the neural head's input)."""
    candidates: npt.NDArray[np.int64] | None = None
    """Bank rows nearest ``state`` (batch, ``KNN_CANDIDATES``), when there is a bank; a superset of the nearest
    ``knn_k``."""
    similarities: FloatArray | None = None
    """Cosine similarity of ``state`` to each of ``candidates`` (same shape)."""


def screening_graph(first_layers: bytes, tuned: TunedLayers, bank: FloatArray | None = None) -> bytes:
    """The bundled model cut after ``STATE_OUTPUT`` followed by the tuned layers, as one model.

    Inputs are the bundled model's (``input_ids``, ``attention_mask``, ``token_type_ids``); outputs are
    ``STATE_OUTPUT`` and ``TUNED_OUTPUT``, both per token. The tuned part reads ``STATE_OUTPUT`` where its own graph
    reads ``hidden``, and an int32 cast of ``attention_mask`` where it reads ``mask``. With a kNN ``bank``
    (sentences x 384, normalised) two more outputs, ``CANDIDATE_OUTPUT`` and ``SIMILARITY_OUTPUT``, name the
    ``KNN_CANDIDATES`` bank sentences nearest the pooled ``STATE_OUTPUT`` and give their exact cosine similarities
    (``_candidate_nodes``). Inside this graph rather than numpy: numpy would hand the bank product to OpenBLAS,
    whose threads then spin for milliseconds and take the second core from the next screen (input p50 14.5 vs
    19.1 ms with OpenBLAS held to one thread)."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load_from_string(first_layers)
    part = onnx.load_from_string(onnx_graph(tuned)).graph
    graph = model.graph
    taken = {i.name for i in graph.initializer} | {o for n in graph.node for o in n.output}
    renamed = {"hidden": STATE_OUTPUT, "mask": "tuned_mask"}
    clashes = (
        {i.name for i in part.initializer} | {o for n in part.node for o in n.output} | {"tuned_mask"}
    ) & taken
    if clashes:
        raise ContentError(f"embedding model and tuned layers share names {sorted(clashes)[:3]}")
    graph.node.append(helper.make_node("Cast", ["attention_mask"], ["tuned_mask"], to=TensorProto.INT32))
    for node in part.node:
        copied = onnx.NodeProto()
        copied.CopyFrom(node)
        copied.input[:] = [renamed.get(name, name) for name in copied.input]
        graph.node.append(copied)
    graph.initializer.extend(part.initializer)
    graph.output.append(
        helper.make_tensor_value_info(TUNED_OUTPUT, TensorProto.FLOAT, ["batch", "tokens", DIMENSIONS])
    )
    if bank is not None:
        nodes, initializers = _candidate_nodes(bank)
        graph.node.extend(nodes)
        graph.initializer.extend(initializers)
        width = min(KNN_CANDIDATES, bank.shape[0])
        graph.output.append(
            helper.make_tensor_value_info(CANDIDATE_OUTPUT, TensorProto.INT64, ["batch", width])
        )
        graph.output.append(
            helper.make_tensor_value_info(SIMILARITY_OUTPUT, TensorProto.FLOAT, ["batch", width])
        )
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    onnx.checker.check_model(model)
    serialised: bytes = model.SerializeToString()
    return serialised


def quantised_bank(bank: FloatArray) -> tuple[npt.NDArray[np.int8], FloatArray]:
    """The bank as int8 rows within +-``QUANT_LEVELS`` and each row's scale (row ~ int8 row x scale)."""
    scale = np.maximum(np.abs(bank).max(axis=1), 1e-12) / QUANT_LEVELS
    rows = np.clip(np.rint(bank / scale[:, None]), -QUANT_LEVELS, QUANT_LEVELS).astype(np.int8)
    return rows, scale.astype(np.float32)


def _candidate_nodes(bank: FloatArray) -> tuple[list[Any], list[Any]]:
    """Mean pooling over real tokens and L2 normalisation (``mean_pooled``, in ONNX), then the kNN search in two
    steps: an int8 product with the whole bank picks the ``KNN_CANDIDATES`` rows that score highest, and the
    float32 product with those rows alone gives their exact similarities, from which ``vote_from_candidates``
    takes the nearest ``knn_k``.

    The full float32 product streams the whole bank (40 MB for 26,000 sentences, more than the EPYC's L3) for
    every message; the int8 bank is a quarter of that and runs through onnxruntime's integer kernels. On the
    5,213 held-out messages the true nearest ten rank at worst 26th of the 256 candidates, and the whole search adds
    1.2 ms at p50 to the network on the 2-core EPYC (``benchmarks/study_knn_candidates.py``);
    ``tests/test_guardrails_classifier.py`` checks the nearest ten against the full product on every dev and test
    message. The weights stay within +-63 because the AVX2 kernel adds pairs of uint8 x int8 products in 16 bits,
    which saturate with full-range int8 weights."""
    from onnx import TensorProto, helper, numpy_helper

    p = "knn_"
    n = helper.make_node
    rows, scale = quantised_bank(bank)
    width = min(KNN_CANDIDATES, bank.shape[0])
    initializers = [
        numpy_helper.from_array(np.ascontiguousarray(bank, dtype=np.float32), p + "bank"),
        numpy_helper.from_array(np.ascontiguousarray(rows.T), p + "bank_int8_t"),
        numpy_helper.from_array(scale, p + "row_scale"),
        numpy_helper.from_array(np.array([width], dtype=np.int64), p + "width"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), p + "axis1"),
        numpy_helper.from_array(np.array([2], dtype=np.int64), p + "axis2"),
        numpy_helper.from_array(np.array(1e-9, dtype=np.float32), p + "min_count"),
        numpy_helper.from_array(np.array(1e-12, dtype=np.float32), p + "min_norm"),
    ]
    nodes = [
        n("Cast", ["attention_mask"], [p + "mask"], to=TensorProto.FLOAT),
        n("Unsqueeze", [p + "mask", p + "axis2"], [p + "weights"]),
        n("Mul", [STATE_OUTPUT, p + "weights"], [p + "masked"]),
        n("ReduceSum", [p + "masked", p + "axis1"], [p + "sum"], keepdims=0),
        n("ReduceSum", [p + "mask", p + "axis1"], [p + "count"], keepdims=1),
        n("Max", [p + "count", p + "min_count"], [p + "count_safe"]),
        n("Div", [p + "sum", p + "count_safe"], [p + "pooled"]),
        n(
            "ReduceL2", [p + "pooled"], [p + "norm"], axes=[1], keepdims=1
        ),  # axes: an attribute until opset 18
        n("Max", [p + "norm", p + "min_norm"], [p + "norm_safe"]),
        n("Div", [p + "pooled", p + "norm_safe"], [p + "query"]),
        # Step 1: int8 scores (the query's own quantisation scale is one positive number: left out, order kept).
        n("DynamicQuantizeLinear", [p + "query"], [p + "query_q", p + "query_scale", p + "query_zero"]),
        n("MatMulInteger", [p + "query_q", p + "bank_int8_t", p + "query_zero"], [p + "dot_int"]),
        n("Cast", [p + "dot_int"], [p + "dot"], to=TensorProto.FLOAT),
        n("Mul", [p + "dot", p + "row_scale"], [p + "rough"]),
        n("TopK", [p + "rough", p + "width"], [p + "rough_top", CANDIDATE_OUTPUT], axis=1),
        # Step 2: exact similarities of the candidates (batch x width x 384 rows times the query).
        n("Gather", [p + "bank", CANDIDATE_OUTPUT], [p + "candidate_rows"], axis=0),
        n("Unsqueeze", [p + "query", p + "axis2"], [p + "query_column"]),
        n("MatMul", [p + "candidate_rows", p + "query_column"], [p + "exact"]),
        n("Squeeze", [p + "exact", p + "axis2"], [SIMILARITY_OUTPUT]),
    ]
    return nodes, initializers


class SignalEncoder:
    """Runs ``screening_graph`` (built in memory; nothing is written to disk)."""

    def __init__(
        self,
        embedder: BundledEmbedder,
        tuned: TunedLayers,
        bank: FloatArray | None = None,
        threads: int | None = None,
    ) -> None:
        self._embedder = embedder
        graph = screening_graph(embedder.first_layers(), tuned, bank)
        self._session = cpu_session(graph, threads or SCREEN_THREADS)
        knn = [CANDIDATE_OUTPUT, SIMILARITY_OUTPUT] if bank is not None else []
        self._outputs = [STATE_OUTPUT, TUNED_OUTPUT, *knn]

    def encode(self, texts: list[str]) -> Encoded:
        feeds = self._embedder.feeds(texts)
        state, tuned, *knn = self._session.run(self._outputs, feeds)
        mask = feeds["attention_mask"].astype(np.float32)
        return Encoded(mean_pooled(state, mask), mean_pooled(tuned, mask), *knn)


_WORKER: ThreadPoolExecutor | None = None
_WORKER_LOCK = threading.Lock()


def _forget_worker_after_fork() -> None:
    # A forked child inherits the executor object but not its thread: submitting to it would wait forever.
    global _WORKER, _WORKER_LOCK
    _WORKER, _WORKER_LOCK = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_worker_after_fork)


def _worker() -> ThreadPoolExecutor:
    global _WORKER
    with _WORKER_LOCK:
        if _WORKER is None:
            _WORKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ketai-screen")
        return _WORKER


def in_background(call: Callable[[], T]) -> Future[T]:
    """Run ``call`` on the screening worker thread; return once it has started.

    Waiting for the start is what makes the overlap real: otherwise the worker cannot take the GIL until the
    caller's Python code gives it up (at the next switch interval, 5 ms), and by then the rules are done."""
    started = threading.Event()

    def job() -> T:
        started.set()
        return call()

    future: Future[T] = _worker().submit(job)
    started.wait()
    return future
