"""The REST gateway: the Jobs API and the health endpoints, on one aiohttp application."""
