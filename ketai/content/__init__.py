"""Locates and loads the clinician-reviewable content folders."""

from ketai.content.paths import content_dir

__all__ = ["content_dir"]
