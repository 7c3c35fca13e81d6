"""Write the small named-entity files the token_classification examples train on (project-written, seeded).

    python examples/make_token_data.py

writes examples/token_classification/data/conll/{train,valid}.conll (one ``word TAG`` line per word, a blank line
between sentences, IOB2 tags PER/ORG/LOC) and the same sentences as data/jsonl/{train,valid}.jsonl (``tokens`` and
``tags`` lists) for the AutoTrain-shaped example. Names are invented; sentences come from templates, seeded, so the
files are identical on every run.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent / "token_classification" / "data"
FIRST = ["Anna", "Tomas", "Leila", "Kofi", "Mei", "Jonas", "Priya", "Omar", "Ines", "Rafael", "Sofia", "Yuki"]
LAST = ["Berg", "Okafor", "Lindqvist", "Haddad", "Moreau", "Tanaka", "Novak", "Castillo", "Fischer", "Mensah"]
ORGS = [
    "Northwind Labs",
    "Bluefin Bank",
    "Kestrel Motors",
    "Harbor Health",
    "Solace Foods",
    "Vantage Airlines",
    "Riverside Council",
    "Orchid Telecom",
    "Granite Insurance",
    "Lumen Press",
]
PLACES = ["Lisbon", "Nairobi", "Osaka", "Toronto", "Valparaiso", "Tromso", "Cork", "Hanoi", "Tbilisi", "New Delhi"]
# {P} person, {O} organisation, {L} place; other words are outside any entity (O).
TEMPLATES = [
    "{P} joined {O} as chief engineer last spring .",
    "{O} will open a new office in {L} next year .",
    "{P} flew from {L} to {L} on Tuesday .",
    "Shares of {O} fell sharply after the report .",
    "According to {P} , the talks in {L} went well .",
    "{P} and {P} met at the {O} headquarters .",
    "The mayor of {L} thanked {O} for the donation .",
    "{O} hired {P} to lead its team in {L} .",
    "Rain delayed the match in {L} for two hours .",
    "{P} said {O} had not replied to the letter .",
    "A spokesman for {O} declined to comment .",
    "{P} grew up in {L} before moving abroad .",
]


def sentence(template: str, rng: random.Random) -> tuple[list[str], list[str]]:
    """One template filled with random entities: its words and IOB2 tags."""
    words: list[str] = []
    tags: list[str] = []
    for part in template.split():
        if part in ("{P}", "{O}", "{L}"):
            kind = {"{P}": "PER", "{O}": "ORG", "{L}": "LOC"}[part]
            name = {
                "PER": lambda: f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                "ORG": lambda: rng.choice(ORGS),
                "LOC": lambda: rng.choice(PLACES),
            }[kind]().split()
            words += name
            tags += [f"B-{kind}"] + [f"I-{kind}"] * (len(name) - 1)
        else:
            words.append(part)
            tags.append("O")
    return words, tags


def main() -> None:
    """Write train (400 sentences) and valid (100) as CoNLL and as JSON Lines."""
    rng = random.Random(11)
    for folder in ("conll", "jsonl"):
        (HERE / folder).mkdir(parents=True, exist_ok=True)
    for split, count in (("train", 400), ("valid", 100)):
        sentences = [sentence(rng.choice(TEMPLATES), rng) for _ in range(count)]
        conll = "\n".join("".join(f"{w} {t}\n" for w, t in zip(*s, strict=True)) for s in sentences)
        (HERE / "conll" / f"{split}.conll").write_text(conll, encoding="utf-8")
        lines = "".join(json.dumps({"tokens": words, "tags": tags}) + "\n" for words, tags in sentences)
        (HERE / "jsonl" / f"{split}.jsonl").write_text(lines, encoding="utf-8")


if __name__ == "__main__":
    main()
