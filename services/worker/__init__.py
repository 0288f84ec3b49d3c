"""Workers: run the tools of one region's tasks against object storage."""
