"""Command-line interface (``trainforge``)."""
