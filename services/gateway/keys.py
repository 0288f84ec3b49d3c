"""Typed keys of the gateway's application state (never `app["string"]`)."""

from __future__ import annotations

from aiohttp import web

from shared.api import STORE
from shared.objects import ObjectStore
from shared.runtime import Broker
from shared.settings import Settings

__all__ = ["BROKER", "OBJECTS", "SETTINGS", "STORE"]

SETTINGS = web.AppKey("settings", Settings)
BROKER = web.AppKey("broker", Broker)
OBJECTS = web.AppKey("objects", ObjectStore)
