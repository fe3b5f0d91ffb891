"""Benchmark: N complete simulated sessions through the real engine (SQLite store included).

Prints p50/p95/p99 turn latency (every engine call: turns and timer ticks) and
sessions per second. Uses a temporary KETAI_HOME; nothing leaves the machine.

    .venv/bin/python benchmarks/bench_sessions.py --sessions 30
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sessions", type=int, default=30)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as home:
        os.environ["KETAI_HOME"] = home
        from ketai.app import build_engine
        from ketai.clock import ManualClock
        from ketai.settings import Settings
        from ketai.simulate import list_personas, load_persona, run_persona

        clock = ManualClock()
        engine = build_engine(Settings(home=Path(home)), clock=clock)
        latencies: list[float] = []
        for name in ("turn", "tick", "start"):
            original = getattr(engine, name)

            def timed(*a: Any, _original: Any = original, **kw: Any) -> Any:
                t0 = time.perf_counter()
                try:
                    return _original(*a, **kw)
                finally:
                    latencies.append((time.perf_counter() - t0) * 1000)

            setattr(engine, name, timed)
        personas = [load_persona(n) for n in list_personas()]
        run_persona(engine, clock, personas[0])  # warm-up: loads the models and builds the exercise index
        latencies.clear()
        started = time.perf_counter()
        for i in range(args.sessions):
            run_persona(engine, clock, personas[i % len(personas)])
        elapsed = time.perf_counter() - started
        latencies.sort()

        def pct(p: float) -> float:
            return latencies[min(len(latencies) - 1, int(p * len(latencies)))]

        print(f"sessions: {args.sessions}, engine calls: {len(latencies)}")
        print(
            f"turn latency ms: p50 {pct(0.50):.2f}  p95 {pct(0.95):.2f}  p99 {pct(0.99):.2f}  "
            f"mean {statistics.fmean(latencies):.2f}"
        )
        print(f"sessions/s: {args.sessions / elapsed:.2f}")


if __name__ == "__main__":
    main()
