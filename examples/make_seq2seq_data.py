"""Write the seq2seq example's data (dates written many ways -> ISO 8601), and optionally a small random T5.

    python examples/make_seq2seq_data.py                          # examples/seq2seq/data/{train,valid}.csv
    python examples/make_seq2seq_data.py --model runs/small-t5    # also a small T5 with a tokenizer of this data

No pretrained encoder-decoder weights come with trainforge; ``--model`` builds a randomly initialised T5 (about
1.6M parameters) and a unigram tokenizer trained on the example's texts, so that the example trains offline.
``small_t5`` is also what ``benchmarks/seq2seq.py`` trains on Multi30k.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import random
from collections.abc import Iterable
from pathlib import Path

HERE = Path(__file__).resolve().parent
MONTHS = [datetime.date(2000, m, 1).strftime("%B") for m in range(1, 13)]


def ordinal(day: int) -> str:
    """``1st``, ``2nd``, ``23rd``, ``11th``."""
    suffix = "th" if 10 <= day % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def written(date: datetime.date, rng: random.Random) -> str:
    """``date`` as people write it, in one of eight English styles."""
    month = MONTHS[date.month - 1]
    styles = [
        f"{month} {date.day}, {date.year}",
        f"{date.day} {month} {date.year}",
        f"{month[:3]} {date.day} {date.year}",
        f"the {ordinal(date.day)} of {month}, {date.year}",
        f"{ordinal(date.day)} {month[:3]}. {date.year}",
        f"{date.year}/{date.month:02d}/{date.day:02d}",
        f"{month} {ordinal(date.day)} {date.year}",
        f"{date.day}.{date.month}.{date.year}",
    ]
    return rng.choice(styles)


def pairs(count: int, rng: random.Random) -> list[tuple[str, str]]:
    """``count`` (written date, ISO date) pairs between 1950 and 2049."""
    start = datetime.date(1950, 1, 1).toordinal()
    out = []
    for _ in range(count):
        date = datetime.date.fromordinal(start + rng.randrange(36524))
        out.append((written(date, rng), date.isoformat()))
    return out


def write(path: Path, rows: list[tuple[str, str]]) -> None:
    """One CSV file with columns ``text`` and ``target``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "target"])
        writer.writerows(rows)


def small_t5(
    folder: Path,
    texts: Iterable[str],
    vocab_size: int = 2000,
    d_model: int = 128,
    layers: int = 2,
    heads: int = 4,
    d_ff: int = 512,
    dropout: float = 0.1,
    seed: int = 0,
) -> str:
    """A randomly initialised T5 and a unigram tokenizer trained on ``texts`` (both languages), saved to ``folder``.

    The tokenizer is shaped as T5's own: SentencePiece-style pieces (``▁`` marks a word start), NFKC-normalised,
    digits and punctuation split off,
    ``</s>`` appended to every text, ids ``<pad>`` 0, ``</s>`` 1, ``<unk>`` 2. The model shares its input and output
    embeddings (T5 v1.0). Returns the folder.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration

    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = Tokenizer(models.Unigram())
    tokenizer.normalizer = normalizers.NFKC()
    # Digits one by one and punctuation apart: numbers and dates get pieces a small model can compose.
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Metaspace(), pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.Punctuation()]
    )
    tokenizer.decoder = decoders.Metaspace()
    specials = ["<pad>", "</s>", "<unk>"]
    trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=specials, unk_token="<unk>")
    tokenizer.train_from_iterator(texts, trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)]
    )
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    fast.save_pretrained(folder)
    torch.manual_seed(seed)
    config = T5Config(
        vocab_size=len(fast),
        d_model=d_model,
        d_kv=d_model // heads,
        d_ff=d_ff,
        num_layers=layers,
        num_heads=heads,
        dropout_rate=dropout,
        pad_token_id=0,
        eos_token_id=1,
        decoder_start_token_id=0,
    )
    T5ForConditionalGeneration(config).save_pretrained(folder)
    return str(folder)


def main() -> None:
    """Write the example's data (seeded: identical files on every run) and, with ``--model``, a small T5."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="also build a small random T5 with this data's tokenizer here")
    args = parser.parse_args()
    rng = random.Random(11)
    splits = {"train": pairs(2000, rng), "valid": pairs(200, rng)}
    for split, rows in splits.items():
        write(HERE / "seq2seq" / "data" / f"{split}.csv", rows)
    if args.model:
        texts = [text for source, target in splits["train"] for text in (source, target)]
        print(small_t5(args.model, texts, vocab_size=400, d_model=128, layers=2, heads=4, d_ff=512))


if __name__ == "__main__":
    main()
