"""Write the small labelled text files the examples train on (the project's own data, generated, seeded).

    python examples/make_text_data.py

writes examples/text_classification/data/{train,valid}.csv (review -> sentiment) and
examples/text_regression/data/{train,valid}.csv (review -> rating 1..5).
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
SUBJECTS = [
    "the battery",
    "the screen",
    "this blender",
    "the delivery",
    "the customer service",
    "this headset",
    "this jacket",
    "the keyboard",
    "the hotel room",
    "the coffee maker",
    "the app",
    "this pair of running shoes",
    "the sound quality",
    "the camera",
    "the packaging",
    "this novel",
    "the restaurant",
    "the charger",
]
# (phrase, rating): ratings 1-2 are negative, 4-5 positive; 3 is left out of the sentiment file.
PHRASES = [
    ("is absolutely wonderful", 5),
    ("exceeded every expectation", 5),
    ("works perfectly and feels premium", 5),
    ("is a joy to use every day", 5),
    ("was worth every penny", 5),
    ("is great value for money", 4),
    ("does the job well", 4),
    ("is solid and reliable", 4),
    ("arrived quickly and works nicely", 4),
    ("is pretty good overall", 4),
    ("is okay, nothing special", 3),
    ("is average at best", 3),
    ("is disappointing", 2),
    ("stopped working after a week", 1),
    ("feels cheap and flimsy", 2),
    ("was a complete waste of money", 1),
    ("is noisy and annoying", 2),
    ("broke on the first day", 1),
    ("is far worse than advertised", 1),
    ("never arrived in one piece", 1),
]
ENDINGS = [
    "",
    " I would buy it again.",
    " Not sure I would recommend it.",
    " My family noticed too.",
    " Five minutes was enough to tell.",
    " The price made it sting more.",
    " Honestly surprised.",
    " Customer support was involved.",
    " It is what it is.",
]


def reviews(count: int, rng: random.Random) -> list[tuple[str, int]]:
    """``count`` (text, rating) pairs."""
    out = []
    for _ in range(count):
        phrase, rating = rng.choice(PHRASES)
        out.append((f"{rng.choice(SUBJECTS).capitalize()} {phrase}.{rng.choice(ENDINGS)}", rating))
    return out


def write(path: Path, header: list[str], rows: list[tuple]) -> None:
    """Write one CSV file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def main() -> None:
    """Generate both example datasets (seeded, so the files are identical on every run)."""
    rng = random.Random(7)
    for split, count in (("train", 480), ("valid", 120)):
        pairs = reviews(count, rng)
        sentiment = [(text, "positive" if r >= 4 else "negative") for text, r in pairs if r != 3]
        write(HERE / "text_classification" / "data" / f"{split}.csv", ["review", "sentiment"], sentiment)
        write(HERE / "text_regression" / "data" / f"{split}.csv", ["review", "rating"], pairs)


if __name__ == "__main__":
    main()
