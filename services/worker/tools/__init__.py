"""The tools a worker runs, by name. Their parameter models live in `shared.toolspecs`, so
the gateway validates a job with the very models the worker parses it with."""

from __future__ import annotations

from services.worker.tools.annotate import gate_annotate
from services.worker.tools.debug import debug_fail, debug_log, debug_sleep
from services.worker.tools.files import archive_extract, file_checksum
from services.worker.tools.media import (
    media_package,
    media_probe,
    media_thumbnail,
    media_transcode,
)
from services.worker.tools.scratch import ToolFunction, hiding_scratch
from services.worker.tools.storage import storage_get, storage_put

_TOOLS: dict[str, ToolFunction] = {
    "storage:get": storage_get,
    "storage:put": storage_put,
    "debug:sleep": debug_sleep,
    "debug:log": debug_log,
    "debug:fail": debug_fail,
    "media:probe": media_probe,
    "media:transcode": media_transcode,
    "media:package": media_package,
    "media:thumbnail": media_thumbnail,
    "file:checksum": file_checksum,
    "archive:extract": archive_extract,
    "gate:annotate": gate_annotate,
}
# No error or log line of a tool shows the worker's scratch directory.
TOOLS = {name: hiding_scratch(tool) for name, tool in _TOOLS.items()}

