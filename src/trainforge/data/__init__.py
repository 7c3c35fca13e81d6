"""Data layer: load local files, saved datasets and Hub datasets into splits with the task's columns."""
