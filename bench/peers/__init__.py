"""The tools users would pick instead, set up for the same work on the same servers."""
