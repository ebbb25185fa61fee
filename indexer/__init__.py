"""Magpie's core: scan, decode, embed, store and search. Never imports Qt."""
