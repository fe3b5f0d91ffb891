"""Build hook: ship the clinician-reviewable content folders inside the wheel.

The top-level folders (prompts/, guardrails/, integration_exercises/, evals/,
protocols/) are copied to ``ketai/_content/`` so a non-editable install finds
them (see ``ketai/content/paths.py``). Everything else is in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

CONTENT_FOLDERS = ("prompts", "guardrails", "integration_exercises", "evals", "protocols")
SKIP = shutil.ignore_patterns("reports", "__pycache__", "*.pyc")


class BuildPyWithContent(build_py):
    def run(self) -> None:
        super().run()
        root = Path(__file__).resolve().parent
        target = Path(self.build_lib) / "ketai" / "_content"
        for name in CONTENT_FOLDERS:
            source = root / name
            if source.is_dir():
                shutil.copytree(source, target / name, dirs_exist_ok=True, ignore=SKIP)


setup(cmdclass={"build_py": BuildPyWithContent})
