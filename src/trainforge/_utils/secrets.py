"""What counts as a secret-looking environment variable: one rule for the app's children, redaction and push.

A name holding TOKEN, SECRET, PASSW(ORD), API_KEY/APIKEY, CREDENTIAL or PRIVATE (any case): such variables are not
passed to the web app's child processes, their values are replaced by their names in text the app sends back, and
``push`` refuses to upload a file holding one's value.
"""

import re

SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSW|API_?KEY|CREDENTIAL|PRIVATE", re.IGNORECASE)
