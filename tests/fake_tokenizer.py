"""A small SentencePiece-style (Unigram) tokenizer.json, made like SigLIP i18n's, for tests.

The real tokenizer of timm/ViT-B-16-SigLIP-i18n-256 can't be downloaded here, so the tests
serve this one from the fake Hub: the same kind of file (a Unigram model with a Metaspace
pre-tokenizer and a post-processor that appends the end token `</s>`), trained in a fraction
of a second on a few sentences in several languages, so German, Japanese and Arabic notes are
tokenized into real pieces and the code paths are the real ones.
"""
from __future__ import annotations

import json
from pathlib import Path

CORPUS = [
    "a photo of a dog on the beach in the evening",
    "receipt from the hardware store and the plumber's invoice",
    "sunset over the mountains seen from a red bicycle",
    "Ein Foto eines Hundes am Strand am Abend",
    "Quittung vom Baumarkt und die Rechnung des Klempners für die Küche",
    "Sonnenuntergang über den Bergen, gesehen von einem roten Fahrrad aus",
    "Grüße aus München: Straßenbahn, Brötchen und Weißwurst",
    "浜辺で夕方に犬の写真を撮りました",
    "金物店の領収書と配管工の請求書",
    "赤い自転車から見た山の夕日。東京タワーと富士山",
    "صورة كلب على الشاطئ في المساء",
    "Une photo d'un chien sur la plage le soir, café crème",
    "Фотография собаки на пляже вечером",
]
SPECIALS = ["<pad>", "</s>", "<unk>"]


def write_fake_tokenizer(folder: Path, vocab_size: int = 400) -> Path:
    """tokenizer.json, tokenizer_config.json and special_tokens_map.json in `folder`."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from tokenizers.trainers import UnigramTrainer

    folder.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Replace("  ", " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = UnigramTrainer(vocab_size=vocab_size, special_tokens=SPECIALS, unk_token="<unk>",
                             show_progress=False)
    tok.train_from_iterator(CORPUS * 3, trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", tok.token_to_id("</s>"))])
    tok.save(str(folder / "tokenizer.json"))
    special = {"eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}
    (folder / "special_tokens_map.json").write_text(json.dumps(special), "utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps(
        {**special, "model_max_length": 64, "tokenizer_class": "T5Tokenizer"}), "utf-8")
    return folder
