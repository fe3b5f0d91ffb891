"""Runtime settings: environment variables prefixed ``KETAI_`` (pydantic-settings).

Every setting has a documented default; defaults are offline (SQLite, a local
Chroma folder, the bundled embedding model, the scripted responder).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KETAI_", extra="ignore")

    home: Path = Field(default=Path("~/.ketai"))
    """Holds ``ketai.sqlite3`` and the ``chroma/`` folder. ``KETAI_HOME``."""

    responder: Literal["scripted", "llm"] = "scripted"
    """``scripted`` (offline, clinician-authored) or ``llm`` (OpenAI-compatible endpoint)."""
    llm_base_url: str | None = None
    """e.g. ``http://127.0.0.1:8080/v1`` (llama.cpp), ``http://127.0.0.1:11434/v1`` (Ollama)."""
    llm_model: str = "gpt-4o-mini"
    llm_api_key: str = "EMPTY"
    llm_timeout_s: float = 20.0
    llm_judge: bool = False
    """Use the configured LLM as an extra guardrail judge (can only raise a level)."""

    chroma_mode: Literal["persistent", "http"] = "persistent"
    chroma_host: str = "127.0.0.1"
    chroma_port: int = 8000
    chroma_collection: str = "ketai-exercises"

    webhook_url: str | None = None
    """Clinician notices are POSTed as JSON here when set."""
    notice_file: Path | None = None
    """Clinician notices are appended as JSON lines here (default: ``<home>/notices.jsonl``)."""
    companion_ack_timeout_s: float = 180.0
    """An unacknowledged companion alert escalates after this many seconds."""

    protocol_file: Path | None = None
    """Patient protocol YAML for ``ketai chat``; default: the shipped example protocol."""

    @property
    def home_dir(self) -> Path:
        return self.home.expanduser()

    @property
    def db_path(self) -> Path:
        return self.home_dir / "ketai.sqlite3"

    @property
    def chroma_path(self) -> Path:
        return self.home_dir / "chroma"

    @property
    def notices_path(self) -> Path:
        return (self.notice_file or self.home_dir / "notices.jsonl").expanduser()
