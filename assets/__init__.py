"""Data shipped with Magpie: bundled models, the desktop entry and icon (no code)."""
