"""Write the sentence-pair files the sentence-transformers examples train on (the project's own data, seeded).

    python examples/make_sentence_data.py

writes examples/sentence_transformers_<task>/data/{train,valid}.csv for the five tasks, all from one set of product
review sentences: a paraphrase says the same thing of the same product part, a contradiction the opposite, and a
sentence about another part is unrelated.

- pair: anchor, positive (paraphrases)
- pair_class: sentence1, sentence2, label (entailment / contradiction / neutral)
- pair_score: sentence1, sentence2, score (0-5, as STS: paraphrase ~4.5, contradiction ~1.5, unrelated ~0.3)
- triplet: anchor, positive (paraphrase), negative (contradiction: a hard negative)
- qa: query (a question about a part), answer (a review sentence about it)
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
# part -> (good phrasings, bad phrasings, questions)
PARTS = {
    "the battery": (
        ["lasts all day", "holds its charge for hours", "easily gets through a long day"],
        ["dies within an hour", "drains very quickly", "barely lasts the morning"],
        ["How long does the battery last?", "Is the battery life any good?"],
    ),
    "the screen": (
        ["is bright and sharp", "shows vivid, crisp colours", "is easy to read even outdoors"],
        ["is dim and blurry", "washes out in sunlight", "looks grainy and dull"],
        ["How good is the display?", "Can you read the screen in sunlight?"],
    ),
    "the delivery": (
        ["arrived two days early", "was fast and on time", "came quicker than promised"],
        ["took three weeks", "was late by a fortnight", "arrived long after the promised date"],
        ["How fast was the shipping?", "Did the parcel arrive on time?"],
    ),
    "the customer service": (
        ["solved my problem right away", "was friendly and helpful", "answered within minutes"],
        ["never answered my emails", "was rude and unhelpful", "left me waiting for days"],
        ["Is the support team helpful?", "How did customer service treat you?"],
    ),
    "the headphones": (
        ["sound rich and clear", "have deep, balanced bass", "give crisp, detailed sound"],
        ["sound tinny and harsh", "crackle at any volume", "have muddy, distorted sound"],
        ["How is the sound quality?", "Do the headphones sound good?"],
    ),
    "the jacket": (
        ["keeps me warm in the snow", "is cosy on freezing days", "blocks the cold wind well"],
        ["lets the cold straight through", "is useless in winter", "leaves me shivering outside"],
        ["Is the jacket warm enough for winter?", "Does the coat keep out the cold?"],
    ),
    "the keyboard": (
        ["feels great to type on", "has smooth, quiet keys", "makes long typing sessions comfortable"],
        ["has sticky, mushy keys", "misses half my keystrokes", "is loud and uncomfortable to type on"],
        ["How does the keyboard feel?", "Is it pleasant to type on?"],
    ),
    "the coffee maker": (
        ["brews a rich cup in a minute", "makes excellent coffee", "brews quickly and tastes great"],
        ["makes bitter, watery coffee", "leaks all over the counter", "takes ages to brew a weak cup"],
        ["Does the machine make good coffee?", "How is the coffee from this maker?"],
    ),
    "the camera": (
        ["takes sharp photos at night", "captures lovely detail", "shoots clear pictures in low light"],
        ["takes blurry, noisy photos", "struggles in any dim light", "produces washed-out pictures"],
        ["How are the photos?", "Does the camera work well at night?"],
    ),
    "the hotel room": (
        ["was spotless and quiet", "was clean and peaceful", "was tidy with a calm view"],
        ["was dirty and noisy", "smelled of smoke and mould", "had stained sheets and loud neighbours"],
        ["Was the room clean?", "How quiet was the hotel room?"],
    ),
}
FRAMES = ["{Part} {phrase}.", "In my experience {part} {phrase}.", "Honestly, {part} {phrase}."]


def sentence(part: str, phrase: str, rng: random.Random) -> str:
    """One review sentence: the part and phrase in a random frame."""
    return rng.choice(FRAMES).format(Part=part.capitalize(), part=part, phrase=phrase)


def rows(parts: list[str], count: int, rng: random.Random) -> list[dict]:
    """``count`` records holding every task's columns, drawn from ``parts``."""
    out = []
    for _ in range(count):
        part = rng.choice(parts)
        good, bad, questions = PARTS[part]
        same, opposite = (good, bad) if rng.random() < 0.5 else (bad, good)
        first, second = rng.sample(same, 2)
        other = rng.choice([p for p in parts if p != part])
        unrelated = sentence(other, rng.choice(PARTS[other][rng.randrange(2)]), rng)
        anchor = sentence(part, first, rng)
        paraphrase, contradiction = sentence(part, second, rng), sentence(part, rng.choice(opposite), rng)
        kind = rng.choice(["entailment", "contradiction", "neutral"])
        partner = {"entailment": paraphrase, "contradiction": contradiction, "neutral": unrelated}[kind]
        score = {"entailment": 4 + rng.random(), "contradiction": 1 + rng.random(), "neutral": rng.random() * 0.6}
        out.append(
            {
                "anchor": anchor,
                "positive": paraphrase,
                "negative": contradiction,
                "partner": partner,
                "label": kind,
                "score": round(score[kind], 1),
                "query": rng.choice(questions),
            }
        )
    return out


def write(path: Path, header: list[str], records: list[dict], names: list[str] | None = None) -> None:
    """One CSV file: ``header`` columns read from ``names`` (default: the same) of each record."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows([[record[n] for n in names or header] for record in records])


def main() -> None:
    """Generate the five example datasets; valid uses product parts training never shows (no overlap)."""
    rng = random.Random(11)
    parts = list(PARTS)
    splits = {"train": rows(parts[:7], 400, rng), "valid": rows(parts[7:], 100, rng)}
    for split, records in splits.items():
        folder = "sentence_transformers_{}/data/" + f"{split}.csv"
        write(HERE / folder.format("pair"), ["anchor", "positive"], records)
        write(HERE / folder.format("triplet"), ["anchor", "positive", "negative"], records)
        write(HERE / folder.format("pair_class"), ["premise", "hypothesis", "label"], records,
              ["anchor", "partner", "label"])  # fmt: skip
        write(HERE / folder.format("pair_score"), ["sentence1", "sentence2", "score"], records,
              ["anchor", "partner", "score"])  # fmt: skip
        write(HERE / folder.format("qa"), ["question", "answer"], records, ["query", "anchor"])


if __name__ == "__main__":
    main()
