"""Shared fixtures. The suite may open network connections only to 127.0.0.1 / localhost."""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ketai.guardrails import KetaiGuardrails

REPO = Path(__file__).resolve().parent.parent
_ALLOWED_HOSTS = {"localhost", "127.0.0.1", "::1", ""}


def _is_local(address: Any) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return True
    host = str(address[0]) if isinstance(address, tuple) and address else ""
    if host in _ALLOWED_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class NetworkBlocked(RuntimeError):
    pass


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any connection to a non-loopback address (offline by default is a contract)."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def guarded_connect(self: socket.socket, address: Any) -> Any:
        if not _is_local(address):
            raise NetworkBlocked(f"test tried to reach {address!r}; only 127.0.0.1 is allowed")
        return real_connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: Any) -> Any:
        if not _is_local(address):
            raise NetworkBlocked(f"test tried to reach {address!r}; only 127.0.0.1 is allowed")
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)


@pytest.fixture
def ketai_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "ketai-home"
    monkeypatch.setenv("KETAI_HOME", str(home))
    for name in ("KETAI_RESPONDER", "KETAI_LLM_BASE_URL", "KETAI_LLM_JUDGE", "KETAI_WEBHOOK_URL"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture
def cli_env(ketai_home: Path) -> dict[str, str]:
    """Environment for subprocess CLI tests: a fresh KETAI_HOME, no proxies, no LLM."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KETAI_")}
    env["KETAI_HOME"] = str(ketai_home)
    env["PYTHONIOENCODING"] = "utf-8"
    return env


@pytest.fixture
def ketai_bin() -> str:
    path = REPO / ".venv" / "bin" / "ketai"
    if path.exists():
        return str(path)
    import shutil

    found = shutil.which("ketai")
    assert found, "the ketai console script is not installed (run make install)"
    return found


EvalRunner = Callable[[str, str, Path, dict[str, str]], dict[str, Any]]


@pytest.fixture
def run_eval(ketai_bin: str) -> EvalRunner:
    """Run ``ketai eval <suite> --split <split> --out <folder> --json`` as a user would; return its JSON report."""

    def run(suite: str, split: str, out: Path, env: dict[str, str]) -> dict[str, Any]:
        done = subprocess.run(
            [ketai_bin, "eval", suite, "--split", split, "--out", str(out), "--json"],
            capture_output=True,
            text=True,
            env=env,
            timeout=900,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        report: dict[str, Any] = json.loads(done.stdout)
        return report

    return run


@pytest.fixture
def manual_engine(ketai_home: Path) -> Iterator[Any]:
    """A SessionEngine from real parts (SQLite, guardrails, scripted responder) on a manual clock."""
    from ketai.app import build_engine
    from ketai.clock import ManualClock
    from ketai.settings import Settings

    clock = ManualClock()
    engine = build_engine(Settings(), clock=clock)
    engine.test_clock = clock  # type: ignore[attr-defined]
    yield engine
    engine.store.close()


@pytest.fixture(scope="session")
def rules_only_guardrails() -> KetaiGuardrails:
    """The guardrails without the embedding classifier: what the lexicons, cues and output rules do by themselves,
    whatever model is trained (shared by the rule tables; building it once saves loading the rules per module)."""
    from ketai.guardrails import build_guardrails

    return build_guardrails(use_classifier=False)
