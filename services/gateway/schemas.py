"""OpenAPI schemas of what the Jobs API answers (shared/jobview.py, views.py, bundles.py),
and of the error body every route answers with. Each lists as `required` the keys the server
always sends, so that a client (and schemathesis) can rely on them."""

from __future__ import annotations

from typing import Any

from shared.jobs import Status

STRING = {"type": "string"}
INTEGER = {"type": "integer"}
NUMBER = {"type": "number"}
NULLABLE_STRING = {"type": ["string", "null"]}


def obj(properties: dict[str, Any], *, optional: tuple[str, ...] = (),
        xml: str | None = None) -> dict[str, Any]:
    """An object schema whose keys are all required but the `optional` ones."""
    schema: dict[str, Any] = {"type": "object", "properties": properties,
                              "required": [key for key in properties if key not in optional]}
    if xml is not None:
        schema["xml"] = {"name": xml}
    return schema


def array(items: dict[str, Any], *, xml: str | None = None,
          item_xml: str | None = None) -> dict[str, Any]:
    """A list; in XML an element `xml` with one `item_xml` element per item."""
    schema: dict[str, Any] = {"type": "array", "items": items}
    if item_xml is not None:
        schema["items"] = {**items, "xml": {"name": item_xml}}
    if xml is not None:
        schema["xml"] = {"name": xml, "wrapped": True}
    return schema


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


ERROR = obj({
    "error": {**STRING, "description": "what went wrong"},
    "status": {**INTEGER, "description": "the HTTP status again"},
    "errors": {**array(obj({"field": STRING, "message": STRING}), xml="errors",
                       item_xml="error"),
               "description": "400: each field at fault (`tasks.0.parameters.source`) and why"},
    "dependency": {**STRING, "description": "503: the server that did not answer "
                   "(mongodb, rabbitmq)"},
    "request_id": {**STRING, "description": "500: quote it when reporting the problem"},
    "state": {**STRING, "description": "409 of a GATE control action: the job's state"},
    "validStates": {**array(STRING, xml="validStates", item_xml="state"),
                    "description": "409 of a GATE control action: the states it is valid in"},
    "missing": {**array(STRING, xml="missing", item_xml="part"),
                "description": "409 of a GATE start: what the job still lacks"},
}, optional=("errors", "dependency", "request_id", "state", "validStates", "missing"),
    xml="error")
STATUS = {"type": "integer", "enum": [s.value for s in Status],
          "description": ", ".join(f"{s.value} {s.text}" for s in Status)}
STATUS_TEXT = {"type": "string", "enum": [s.text for s in Status]}
TIMESTAMP = {"type": "string", "description": "UTC, e.g. 2018-04-26T17:27:43Z"}
NULLABLE_TIMESTAMP = {**TIMESTAMP, "type": ["string", "null"]}
OUTPUT = obj({
    "path": STRING, "size": INTEGER,
    "url": {**NULLABLE_STRING, "description": "presigned, valid for an hour; null for an "
            "object in the user's own bucket"},
    "bucket": {**STRING, "description": "the user's own bucket, when the object is there"},
}, optional=("bucket",))
TASK_ERROR = {"type": ["object", "null"], "description": "the last attempt's failure",
              "properties": {"class": STRING, "message": STRING, "attempt": INTEGER}}
TASK = obj({
    "id": INTEGER, "tool": STRING,
    "parameters": {"type": "object", "description": "credentials shown as ***"},
    "status": STATUS, "status_text": STATUS_TEXT,
    "progress": {**NUMBER, "minimum": 0, "maximum": 100},
    "attempts": INTEGER, "error": TASK_ERROR, "outputs": array(OUTPUT),
    "result": {"type": "object"}, "started": NULLABLE_TIMESTAMP,
    "finished": NULLABLE_TIMESTAMP,
})
JOB = obj({
    "id": STRING, "url": STRING, "tasks": array(TASK),
    "notify": NULLABLE_STRING, "organization": NULLABLE_STRING,
    "organization_id": NULLABLE_STRING, "user": NULLABLE_STRING,
    "status": STATUS, "status_text": STATUS_TEXT,
    "created": TIMESTAMP, "modified": TIMESTAMP, "finished": NULLABLE_TIMESTAMP,
    "project_offer": {"type": "null"}, "purchase_order": {"type": "null"},
    "purchase_order_id": {"type": "null"},
    "job_bundle": NULLABLE_STRING, "job_bundle_id": NULLABLE_STRING,
    "tags": array(STRING), "region": STRING, "role_arn": {"type": "null"},
})
JOB_PAGE = obj({
    "count": INTEGER, "next": NULLABLE_STRING, "previous": NULLABLE_STRING,
    "results": array(ref("Job")),
})
TASK_LOGS = obj({
    "logs": array(obj({"timestamp": {**INTEGER, "description": "unix seconds"},
                       "message": STRING})),
    "next": {**NULLABLE_STRING, "description": "cursor of the next page, when there is one"},
    "cursor": {**NULLABLE_STRING, "description": "resume here for lines written later"},
})
JOB_LOG = {**array(obj({"date": {**STRING, "description": "ISO 8601, UTC (an attribute "
                                 "in XML, the message being the element's text)"},
                        "message": STRING}), xml="log", item_xml="entry")}
BUNDLE = obj({"id": STRING, "name": STRING, "organization": STRING,
              "organization_id": STRING, "created": TIMESTAMP})
JOB_METRICS = obj({
    "id": STRING,
    "cus": {**NUMBER, "description": "CPU minutes of the tools' subprocesses"},
    "video_minutes_in": NUMBER, "video_minutes_out": NUMBER,
    "gb_in": {**NUMBER, "description": "10^9 bytes fetched"},
    "gb_out": {**NUMBER, "description": "10^9 bytes stored"},
})
SCHEMAS: dict[str, Any] = {
    "Error": ERROR, "Job": JOB, "JobPage": JOB_PAGE, "TaskLogs": TASK_LOGS,
    "JobLog": JOB_LOG, "Bundle": BUNDLE, "BundleList": array(BUNDLE),
    "JobMetrics": JOB_METRICS,
}
