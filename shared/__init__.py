"""Code every Conveyor service shares: contracts, topology, settings and clients."""
