"""The model card's outline: one title, and a library's own card nested under ours instead of beside it."""

from trainforge.training.artifacts import demote_headings


def test_headings_move_one_level_down_but_code_stays():
    library_card = (
        "# Library title\n\n## Evaluation\n\n```python\n# a comment, not a heading\n```\n### Metrics\n"
        "~~~\n# also code\n~~~\n#hashtag\n###### Deepest\n#\n"
    )
    demoted = demote_headings(library_card)
    assert demoted.splitlines() == [
        "## Library title",
        "",
        "### Evaluation",
        "",
        "```python",
        "# a comment, not a heading",
        "```",
        "#### Metrics",
        "~~~",
        "# also code",
        "~~~",
        "#hashtag",
        "###### Deepest",
        "##",
    ]
    assert demoted.endswith("\n")
