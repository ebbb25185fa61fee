"""Magpie's core: scan, decode, embed, store and search. Never imports Qt."""
from indexer.own_dirs_only import keep_libraries_in_our_dirs

keep_libraries_in_our_dirs()  # first, before any module of ours can import onnxruntime
