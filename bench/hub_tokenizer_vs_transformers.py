"""Magpie's torch-free Hub tokenizer against open_clip's own HFTokenizer (transformers).

    pip install --no-deps --target /tmp/tf 'transformers==5.23.0'
    PYTHONPATH=.:/tmp/tf python bench/hub_tokenizer_vs_transformers.py [FOLDER]

open_clip tokenizes SigLIP i18n with `HFTokenizer`, which needs transformers (not a Magpie
dependency: seconds of import per query). indexer/hub_tokenizer.py does the same steps with the
`tokenizers` library. This prints whether both give the same ids for a set of texts in several
languages, for the tokenizer files in FOLDER (default: the generated test tokenizer, declared as
each of the fast tokenizer classes transformers could load it as).
"""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TEXTS = ["Ein Foto eines Hundes am Strand!", "浜辺で夕方に犬の写真を撮りました。", "a red bicycle",
         "Grüße aus MÜNCHEN: Straßenbahn & Brötchen", " ".join(["Quittung vom Baumarkt"] * 30),
         "", "صورة كلب على الشاطئ", "x", "it&amp;s a_b  (c) — «d» 🐶"]


def compare(folder: Path, context_length: int = 64, clean: str = "canonicalize") -> bool:
    from open_clip.tokenizer import HFTokenizer

    from indexer.hub_tokenizer import HubTokenizer

    ours = HubTokenizer(folder, context_length, clean)(TEXTS)
    theirs = HFTokenizer(str(folder), context_length=context_length, clean=clean)(TEXTS).numpy()
    return bool((ours == theirs).all())


def main() -> int:
    import transformers

    print(f"# transformers {transformers.__version__}")
    if len(sys.argv) > 1:
        same = compare(Path(sys.argv[1]))
        print(f"{sys.argv[1]}: {'identical ids' if same else 'DIFFERENT ids'}")
        return 0 if same else 1
    from tests.fake_tokenizer import write_fake_tokenizer

    ok = True
    for cls in ("T5TokenizerFast", "T5Tokenizer", "PreTrainedTokenizerFast"):
        d = Path(tempfile.mkdtemp(prefix="magpie-tok-"))
        write_fake_tokenizer(d)
        cfg = json.loads((d / "tokenizer_config.json").read_text("utf-8"))
        (d / "tokenizer_config.json").write_text(json.dumps({**cfg, "tokenizer_class": cls}))
        same = compare(d)
        ok &= same
        print(f"generated tokenizer as {cls}: {'identical ids' if same else 'DIFFERENT ids'}")
        shutil.rmtree(d, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
