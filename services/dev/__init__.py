"""`conveyor dev`: the whole platform on one machine, for development and the demo."""
