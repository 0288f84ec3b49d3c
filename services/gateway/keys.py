"""Typed keys of the gateway's application state (never `app["string"]`)."""

from __future__ import annotations

from aiohttp import web

from shared.objects import ObjectStore
from shared.runtime import Broker
from shared.settings import Settings
from shared.store import Store

SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
BROKER = web.AppKey("broker", Broker)
OBJECTS = web.AppKey("objects", ObjectStore)
