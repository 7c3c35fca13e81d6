"""Small internal helpers."""
