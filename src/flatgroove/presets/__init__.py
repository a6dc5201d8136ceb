"""Built-in material that ships with flatgroove: grooves written in code (and the pretrained
model's checkpoint, as package data)."""

from __future__ import annotations

from flatgroove.presets.grooves import BUILTIN_NAMES, all_builtins, builtin, pattern

__all__ = ["BUILTIN_NAMES", "all_builtins", "builtin", "pattern"]
