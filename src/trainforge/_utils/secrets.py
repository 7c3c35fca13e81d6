"""What counts as a secret-looking environment variable: one rule for the app's children, redaction and push.

A name holding TOKEN, SECRET, PASSW(ORD), API_KEY/APIKEY, CREDENTIAL or PRIVATE (any case): such variables are not
passed to the web app's child processes, their values are replaced by their names in text the app sends back, and
``push`` refuses to upload a file holding one's value.
"""

import re

SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSW|API_?KEY|CREDENTIAL|PRIVATE", re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` with the value of every secret-looking environment variable replaced by ``${NAME}``.

    For messages printed to a terminal or a CI log: a config that reads ``${HF_TOKEN}`` into the wrong field
    (``training.learning_rate: ${HF_TOKEN}``, ``data.columns.text: ${API_KEY}``) is refused with the value it holds,
    which would print the secret. Values shorter than 6 characters are left alone (they would match ordinary text).
    """
    import os

    secrets = [(name, value) for name, value in os.environ.items() if SECRET_NAME.search(name) and len(value) >= 6]
    # Longest first: a secret that contains another is replaced whole, not left partly shown.
    for name, value in sorted(secrets, key=lambda item: -len(item[1])):
        if value in text:
            text = text.replace(value, f"${{{name}}}")
    return text
