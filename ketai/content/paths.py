"""Where the content folders live.

In a wheel they are package data under ``ketai/_content/<name>``; in a source
checkout (editable install, tests) they are the top-level folders of the repo.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

ContentName = Literal["prompts", "guardrails", "integration_exercises", "evals", "protocols"]

_PACKAGE_ROOT = Path(__file__).resolve().parent.parent


def content_dir(name: ContentName) -> Path:
    """The directory holding content folder ``name``; raises FileNotFoundError if absent."""
    bundled = _PACKAGE_ROOT / "_content" / name
    if bundled.is_dir():
        return bundled
    checkout = _PACKAGE_ROOT.parent / name
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"content folder {name!r} not found in {bundled} or {checkout}")
