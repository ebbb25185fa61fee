"""The demo and the bundled tiny models' training data, kept out of the core (`indexer/`).

`shapes` draws the coloured-shape pictures and notes of the offline demo folder (and the
tiny-shapes training set); `digits` turns scikit-learn's handwritten digit scans into pictures
(tiny-digits training and the search eval). Neither imports the core, the window or Qt: the
core never needs them to index or search (import-linter checks both directions).
"""
