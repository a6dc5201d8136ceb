"""Evaluation: model-agnostic metrics for the paper's claims (DESIGN §5)."""

from __future__ import annotations

from flatgroove.evaluate.metrics import (
    abrupt_jump_share,
    curve_length,
    discrete_geodesic,
    flatness,
    geodesic_study,
    hit_metrics,
    hits_from_outputs,
    interpolation_paths,
    mae_on_true_hits,
    smoothness,
    step_sizes,
)

__all__ = [
    "abrupt_jump_share",
    "curve_length",
    "discrete_geodesic",
    "flatness",
    "geodesic_study",
    "hit_metrics",
    "hits_from_outputs",
    "interpolation_paths",
    "mae_on_true_hits",
    "smoothness",
    "step_sizes",
]
