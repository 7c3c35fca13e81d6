"""The one training driver and what it shares across tasks: arguments, callbacks, artifacts."""
