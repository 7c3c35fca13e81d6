"""Write the LLM examples' data (deterministic): conversations, preference pairs and a small corpus.

python examples/make_llm_data.py      # writes examples/llm_*/data/*.jsonl
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
CAPITALS = {
    "France": "Paris",
    "Germany": "Berlin",
    "Italy": "Rome",
    "Spain": "Madrid",
    "Japan": "Tokyo",
    "Canada": "Ottawa",
    "Egypt": "Cairo",
    "Kenya": "Nairobi",
    "Peru": "Lima",
    "Norway": "Oslo",
    "Poland": "Warsaw",
    "Chile": "Santiago",
}
COLOURS = {"apple": "red", "banana": "yellow", "lime": "green", "plum": "purple", "orange": "orange", "kiwi": "brown"}


def qa(rng: random.Random) -> tuple[str, str, str]:
    """(question, right answer, wrong answer) in the style the fine-tuned assistant should learn: one short line."""
    if rng.random() < 0.5:
        country = rng.choice(list(CAPITALS))
        wrong = rng.choice([c for c in CAPITALS.values() if c != CAPITALS[country]])
        return (
            f"What is the capital of {country}?",
            f"The capital of {country} is {CAPITALS[country]}.",
            f"It is {wrong}, I think.",
        )
    a, b = rng.randint(2, 30), rng.randint(2, 30)
    return f"What is {a} plus {b}?", f"{a} plus {b} is {a + b}.", f"{a} plus {b} is {a + b + rng.randint(1, 9)}."


def write(path: Path, rows: list[dict]) -> None:
    """One JSON object per line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def main() -> None:
    """Write every LLM example's data file."""
    rng = random.Random(0)
    chats = []
    for _ in range(200):
        question, answer, _ = qa(rng)
        turns = [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
        if rng.random() < 0.25:
            turns.insert(0, {"role": "system", "content": "You answer in one short sentence."})
        chats.append({"messages": turns})
    write(HERE / "llm_sft" / "data" / "chat.jsonl", chats)
    pairs = []
    for _ in range(120):
        question, answer, wrong = qa(rng)
        pairs.append({"prompt": question, "chosen": answer, "rejected": wrong})
    write(HERE / "llm_dpo" / "data" / "pairs.jsonl", pairs)
    # A pure style preference (same content, upper case preferred) that an instruct model does not hold yet, so
    # reward accuracy starts near 0 and shows whether preference training moved the model.
    style = []
    for _ in range(120):
        question, answer, _ = qa(rng)
        style.append({"prompt": question, "chosen": answer.upper(), "rejected": answer})
    write(HERE / "llm_orpo" / "data" / "style_pairs.jsonl", style)
    corpus = []
    for fruit, colour in COLOURS.items():
        for country, capital in CAPITALS.items():
            corpus.append({"text": f"The {fruit} is {colour}. {capital} is the capital of {country}."})
    write(HERE / "llm_generic" / "data" / "corpus.jsonl", corpus)


if __name__ == "__main__":
    main()
