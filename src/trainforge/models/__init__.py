"""What trainforge knows about base models before loading their weights."""
