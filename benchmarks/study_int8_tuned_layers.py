"""Rule 36's study: the screen with its tuned layers quantised to int8, against the float32 layers in use.

    .venv/bin/python benchmarks/study_int8_tuned_layers.py [--int8] FILE...

Run once without and once with ``--int8``. With it, the tuned layers' ``MatMul`` and ``Attention`` nodes are
quantised when the screen is built (onnxruntime's ``quantize_dynamic``, int8 weights kept within 7 bits because
AVX2 without VNNI adds pairs of uint8 x int8 products in 16 bits and would saturate); the bundled first layers are
int8 already and stay as shipped. Prints, per FILE (single-message lines), crisis messages under-escalated and
benign messages escalated (``score_messages``, the scoring of ``score_guardrails_file.py single``), then the
input-screening latency over ``dev.jsonl`` (three passes, as ``bench_screen.py``). Counts only, never a message.
Nothing ships from here: rule 36 in ``docs/GUARDRAILS_HISTORY.md`` decided against it.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bar_sweep import read_rows
from bench_screen import input_timings

from ketai.content.paths import content_dir
from ketai.evals.guardrails import percentile, score_messages
from ketai.guardrails import build_guardrails
from ketai.guardrails import encoder as encoder_module
from ketai.guardrails.tuned_layers import TunedLayers, onnx_graph


def int8_tuned_graph(tuned: TunedLayers) -> bytes:
    """``onnx_graph(tuned)`` with its matrix products quantised (node names added: the quantiser selects by name)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    model = onnx.load_from_string(onnx_graph(tuned))
    for index, node in enumerate(model.graph.node):
        node.name = node.name or f"node{index}_{node.op_type}"
    with tempfile.TemporaryDirectory() as folder:
        source, target = Path(folder) / "float.onnx", Path(folder) / "int8.onnx"
        onnx.save(model, source)
        quantize_dynamic(
            source,
            target,
            weight_type=QuantType.QInt8,
            reduce_range=True,
            op_types_to_quantize=["MatMul", "Attention"],
            # The fused com.microsoft nodes defeat shape inference; every tensor here is float32.
            extra_options={"MatMulConstBOnly": True, "DefaultTensorType": onnx.TensorProto.FLOAT},
        )
        quantised: bytes = target.read_bytes()
    return quantised


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--int8", action="store_true", help="quantise the tuned layers (rule 36's Q)")
    args = parser.parse_args()
    if args.int8:
        # The screen builds its graph through this module's name for onnx_graph; the study swaps it in memory.
        setattr(encoder_module, "onnx_graph", int8_tuned_graph)  # noqa: B010 (not an export of the module)
    guardrails = build_guardrails()
    print("tuned layers:", "int8 (7-bit weights)" if args.int8 else "float32 (in use)")
    pooled = [0, 0]
    for path in args.files:
        result = score_messages(guardrails, read_rows([path]))
        pooled[0] += result["crisis_under"]
        pooled[1] += result["benign_escalated"]
        print(
            f"{path.name}: crisis under-escalated {result['crisis_under']} of {result['crisis_rows']}, "
            f"benign escalated {result['benign_escalated']} of {result['benign_rows']}"
        )
    print(f"pooled: crisis under-escalated {pooled[0]}, benign escalated {pooled[1]}")
    messages = read_rows([content_dir("evals") / "guardrails" / "dev.jsonl"])
    timings = [ms for _ in range(3) for ms in input_timings(guardrails, messages)]
    print(
        f"input screening over dev: p50 {percentile(timings, 50):.2f} ms, p95 {percentile(timings, 95):.2f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
