"""The error a model stage raises for input the user can fix (the pipeline reports it as bad input, exit 2)."""

from __future__ import annotations


class ModelInputError(ValueError):
    """Training or scoring input the model cannot use: no churners to learn from, feature columns missing."""


class ModelNotFoundError(ValueError):
    """The registry has no model version under the name and alias asked for (train and promote one first)."""
