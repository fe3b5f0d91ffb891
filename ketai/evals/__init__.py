"""Evaluation runners (`ketai eval ...`). Data lives in the top-level ``evals/`` folder."""
