"""Loads and validates a patient's clinician-written protocol file (YAML)."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import ValidationError

from ketai.content.paths import content_dir
from ketai.errors import ContentError
from ketai.models import Protocol


def example_protocol_path() -> Path:
    return content_dir("protocols") / "example.yaml"


def load_protocol(path: Path | None = None) -> Protocol:
    """Load ``path`` (default: the shipped example); one clear ContentError per problem."""
    path = path or example_protocol_path()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ContentError(f"protocol file not found: {path}") from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ContentError(f"{path.name}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise ContentError(f"{path.name}: expected a mapping of protocol fields")
    try:
        protocol = Protocol.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise ContentError(f"{path.name}: {problems}") from exc
    if protocol.bp_max_systolic >= protocol.bp_emergency_systolic:
        raise ContentError(f"{path.name}: bp_max_systolic must be below bp_emergency_systolic")
    if protocol.bp_max_diastolic >= protocol.bp_emergency_diastolic:
        raise ContentError(f"{path.name}: bp_max_diastolic must be below bp_emergency_diastolic")
    return protocol
