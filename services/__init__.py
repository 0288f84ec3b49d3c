"""Conveyor's processes: gateway, scheduler, worker, logger, and the `conveyor` command."""
