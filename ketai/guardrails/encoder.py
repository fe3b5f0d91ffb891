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
SIMILARITY_OUTPUT = "knn_similarities"


@dataclass(frozen=True)
class Encoded:
    """Sentence vectors for a batch (both L2-normalised, one row per text)."""

    state: FloatArray
    """Mean-pooled output of the bundled model's layer ``STATE_LAYER`` (what the kNN bank holds)."""
    tuned: FloatArray
    """Mean-pooled output of the fine-tuned last layers (the neural head's input)."""
    similarities: FloatArray | None = None
    """Cosine similarity of ``state`` to every kNN bank sentence (batch, bank size), when there is a bank."""


def screening_graph(first_layers: bytes, tuned: TunedLayers, bank: FloatArray | None = None) -> bytes:
    """The bundled model cut after ``STATE_OUTPUT`` followed by the tuned layers, as one model.

    Inputs are the bundled model's (``input_ids``, ``attention_mask``, ``token_type_ids``); outputs are
    ``STATE_OUTPUT`` and ``TUNED_OUTPUT``, both per token. The tuned part reads ``STATE_OUTPUT`` where its own graph
    reads ``hidden``, and an int32 cast of ``attention_mask`` where it reads ``mask``. With a kNN ``bank``
    (sentences x 384, normalised) a third output, ``SIMILARITY_OUTPUT``, holds the cosine similarity of the pooled
    ``STATE_OUTPUT`` to each bank sentence: that product streams 26 MB, and numpy would hand it to OpenBLAS, whose
    threads then spin for milliseconds and take the second core from the next screen (input p50 14.5 vs 19.1 ms
    with OpenBLAS held to one thread); inside this graph it runs on the session's one thread."""
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
        nodes, initializers = _similarity_nodes(bank)
        graph.node.extend(nodes)
        graph.initializer.extend(initializers)
        graph.output.append(
            helper.make_tensor_value_info(SIMILARITY_OUTPUT, TensorProto.FLOAT, ["batch", bank.shape[0]])
        )
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    onnx.checker.check_model(model)
    serialised: bytes = model.SerializeToString()
    return serialised


def _similarity_nodes(bank: FloatArray) -> tuple[list[Any], list[Any]]:
    """Mean pooling over real tokens, L2 normalisation and the product with the bank (``mean_pooled`` and
    ``knn_vote``'s product, in ONNX)."""
    from onnx import TensorProto, helper, numpy_helper

    p = "knn_"
    n = helper.make_node
    initializers = [
        numpy_helper.from_array(np.ascontiguousarray(bank.T, dtype=np.float32), p + "bank_t"),
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
        n("MatMul", [p + "query", p + "bank_t"], [SIMILARITY_OUTPUT]),
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
        self._outputs = [STATE_OUTPUT, TUNED_OUTPUT] + ([SIMILARITY_OUTPUT] if bank is not None else [])

    def encode(self, texts: list[str]) -> Encoded:
        feeds = self._embedder.feeds(texts)
        state, tuned, *similarities = self._session.run(self._outputs, feeds)
        mask = feeds["attention_mask"].astype(np.float32)
        return Encoded(mean_pooled(state, mask), mean_pooled(tuned, mask), *similarities)


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
