"""Every registered task ships what DESIGN.md §3 requires: example config, docs page, test module, schema."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainforge._utils.docs import fields_markdown, page_block
from trainforge.tasks import REGISTRY, list_tasks

ROOT = Path(__file__).resolve().parents[1]
SPECS = list_tasks()


def test_registry_lists_each_task_once():
    assert len(REGISTRY) == len(set(REGISTRY)) == len(SPECS)
    assert len({spec.name for spec in SPECS}) == len(SPECS)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_task_has_example_docs_and_tests(spec):
    assert sorted((ROOT / "examples" / spec.name).glob("*.yaml")), f"examples/{spec.name}/*.yaml missing"
    page = ROOT / "docs" / "tasks" / f"{spec.name}.md"
    assert page.exists(), f"{page} missing"
    block = page_block(page.read_text(encoding="utf-8"))
    assert block == fields_markdown(spec).strip(), (
        f"{page} field tables are stale: run python -m trainforge._utils.docs"
    )
    # An end-to-end test module under tests/tasks/ that names the task.
    tests = [
        p for p in (ROOT / "tests" / "tasks").glob("test_*.py") if f'"{spec.name}"' in p.read_text(encoding="utf-8")
    ]
    assert tests, f"no end-to-end test for {spec.name} under tests/tasks/"


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_task_schema_exports_and_names_are_snake_case(spec):
    schema = spec.params.model_json_schema()
    assert schema["type"] == "object"
    assert spec.name.isidentifier() and spec.name == spec.name.lower()
    assert spec.summary and spec.columns
    for field in spec.params.model_fields.values():
        assert field.description, f"{spec.name} param without help text"
