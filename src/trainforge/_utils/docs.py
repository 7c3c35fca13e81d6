"""Keep the field tables in ``docs/tasks/<task>.md`` generated from the schema, never hand-copied.

    python -m trainforge._utils.docs          # rewrite the tables in docs/tasks/*.md

Each page holds a block between ``<!-- fields:begin -->`` and ``<!-- fields:end -->``; tests fail when a
page's block differs from what the schema generates.
"""

from __future__ import annotations

import sys
from pathlib import Path

BEGIN, END = "<!-- fields:begin -->", "<!-- fields:end -->"


def fields_markdown(spec) -> str:
    """The columns and fields tables of one task, as Markdown."""
    from trainforge.config.template import field_rows

    lines = ["### Columns", "", "| column | required | meaning |", "|---|---|---|"]
    lines += [f"| `{c.name}` | {'yes' if c.required else 'no'} | {c.help} |" for c in spec.columns]
    lines += ["", "### Fields", "", "| key | tier | default | help |", "|---|---|---|---|"]
    lines += [
        f"| `{key}` | {tier} | `{default}` | {text.replace('|', '/')} |"
        for key, tier, default, text in field_rows(spec)
    ]
    return "\n".join(lines)


def page_block(text: str) -> str | None:
    """The generated block of a docs page, or None when the page has no markers."""
    if BEGIN not in text or END not in text:
        return None
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip()


def update_docs(folder: Path) -> list[Path]:
    """Rewrite the field block of every task page in ``folder``; returns the pages changed."""
    from trainforge.tasks import list_tasks

    changed = []
    for spec in list_tasks():
        page = folder / f"{spec.name}.md"
        if not page.exists():
            continue
        text = page.read_text(encoding="utf-8")
        if page_block(text) is None:
            continue
        head, rest = text.split(BEGIN, 1)
        new = f"{head}{BEGIN}\n{fields_markdown(spec)}\n{END}{rest.split(END, 1)[1]}"
        if new != text:
            page.write_text(new, encoding="utf-8")
            changed.append(page)
    return changed


if __name__ == "__main__":
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/tasks")
    for path in update_docs(root):
        print(f"updated {path}")
