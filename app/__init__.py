"""Magpie's entry points, settings and wiring (the only layer that knows both Qt and the core)."""
