"""Write the small SQuAD-shaped question-answering files the extractive_qa examples train on (generated, seeded).

    python examples/make_qa_data.py

writes examples/extractive_qa/data/{train,valid}.jsonl: short paragraphs about invented towns, questions about them
with their answers as ``{"text": [...], "answer_start": [...]}`` (character offsets into the paragraph), and (every
other paragraph) a question about a fact the paragraph leaves out, which has no answer (SQuAD 2.0: empty lists).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
SYLLABLES = ["var", "hol", "esk", "mar", "lin", "dor", "bel", "wick", "tam", "ros", "fen", "ly", "brook", "ham"]
RIVERS = ["Esk", "Wend", "Tarrow", "Lune", "Glass", "Orrin", "Maple", "Sable"]
TRADES = ["clockmaking", "wool", "glassware", "cheese", "paper", "rope", "salt", "violins", "copper pans"]
FOUNDERS = ["Flemish weavers", "a Benedictine abbey", "salt merchants", "a Norman baron", "fishermen", "monks"]
REGIONS = ["the northern hills", "the eastern marshes", "the coastal plain", "the upper valley", "the lake district"]

# (fact, sentence with {value}, questions with {town})
FACTS = [
    ("river", "{town} lies on the river {value}.", ["Which river does {town} lie on?", "On what river is {town}?"]),
    ("year", "It was founded in {value}.", ["When was {town} founded?", "In which year was {town} founded?"]),
    (
        "founder",
        "Its first settlers were {value}.",
        ["Who first settled {town}?", "Who were the first settlers of {town}?"],
    ),
    ("trade", "The town is known for its {value}.", ["What is {town} known for?", "What is {town} famous for?"]),
    ("region", "{town} is the largest market town in {value}.", ["Where is {town} the largest market town?"]),
    ("people", "About {value} people live there today.", ["How many people live in {town}?"]),
]


def town(rng: random.Random) -> str:
    """An invented town name."""
    return "".join(rng.sample(SYLLABLES, rng.choice([2, 3]))).capitalize()


def value(fact: str, rng: random.Random) -> str:
    """A value of ``fact`` (a river, a year...), as the paragraph writes it."""
    choices = {"river": RIVERS, "founder": FOUNDERS, "trade": TRADES, "region": REGIONS}
    if fact == "year":
        return str(rng.randint(900, 1899))
    if fact == "people":
        return f"{rng.randint(2, 95)},{rng.randint(0, 999):03d}"
    return rng.choice(choices[fact])


def paragraph(rng: random.Random, index: int) -> list[dict]:
    """One paragraph and its questions (one of them unanswerable when a fact is left out)."""
    name = town(rng)
    facts = rng.sample(FACTS, k=len(FACTS))
    left_out = facts.pop() if index % 2 == 0 else None  # every other paragraph omits a fact
    context, answers = f"{name} is a {rng.choice(['small', 'quiet', 'busy', 'old'])} town.", {}
    for fact, sentence, _ in facts:
        text = value(fact, rng)
        piece = sentence.format(town=rng.choice([name, "The town"]), value="\0")
        start = len(context) + (1 if context else 0) + piece.index("\0")
        context = f"{context} {piece}".strip().replace("\0", text)
        answers[fact] = {"text": [text], "answer_start": [start]}
    rows = []
    for fact, _, questions in facts[:3]:
        rows.append(
            {"context": context, "question": rng.choice(questions).format(town=name), "answers": answers[fact]}
        )
    if left_out is not None:
        question = rng.choice(left_out[2]).format(town=name)
        rows.append({"context": context, "question": question, "answers": {"text": [], "answer_start": []}})
    for row in rows:
        start, text = (row["answers"]["answer_start"] or [0])[0], (row["answers"]["text"] or [""])[0]
        assert row["context"][start : start + len(text)] == text  # the offsets the task checks
    return rows


def main() -> None:
    """Generate the example dataset (seeded, so the files are identical on every run)."""
    rng = random.Random(11)
    folder = HERE / "extractive_qa" / "data"
    folder.mkdir(parents=True, exist_ok=True)
    for split, paragraphs in (("train", 100), ("valid", 25)):
        rows = [row for i in range(paragraphs) for row in paragraph(rng, i)]
        with (folder / f"{split}.jsonl").open("w", encoding="utf-8") as handle:
            for i, row in enumerate(rows):
                handle.write(json.dumps({"id": f"{split}-{i}", **row}) + "\n")


if __name__ == "__main__":
    main()
