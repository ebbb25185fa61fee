"""Text from the disk, made safe to print on a terminal.

A file name may hold any byte but / and NUL: ESC sequences that clear the screen or retitle
the window, a newline that forges a result line, a carriage return that overwrites one,
bidirectional controls that show a name backwards. Everything the CLI prints that came from a
user's disk (paths, names, snippets, error reasons, folder names) goes through
`terminal_safe`, which writes such characters as visible Python-style escapes (\\x1b, \\n,
\\u202e) so the text stays readable and unambiguous.
"""
from __future__ import annotations

_BIDI = (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))
_NAMED = {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}


def _escape(cp: int) -> str:
    if cp in _NAMED:
        return _NAMED[cp]
    return f"\\x{cp:02x}" if cp < 0x100 else f"\\u{cp:04x}"


# C0 controls, DEL, C1 controls, bidi controls, line/paragraph separators, lone surrogates
# (an undecodable name that reached a str): each becomes its escape.
_TABLE = {cp: _escape(cp) for cp in (*range(0x20), *range(0x7F, 0xA0), *_BIDI, 0x2028, 0x2029,
                                     *range(0xD800, 0xE000))}
_TABLE_KEEP_NL = {**_TABLE}
del _TABLE_KEEP_NL[0x0A]


def terminal_safe(text: object, *, keep_newlines: bool = False) -> str:
    """`text` with every control character written as an escape; keep_newlines leaves "\\n"
    (for our own multi-line messages), every other control is still escaped."""
    return str(text).translate(_TABLE_KEEP_NL if keep_newlines else _TABLE)
