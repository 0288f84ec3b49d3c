"""The OpenAPI 3.1 document of the API, built from the route table and the models."""

from __future__ import annotations

import re
from typing import Any

from services.gateway import me
from services.gateway.gatecloud import schemas as gate_schemas
from services.gateway.routes import Route
from shared.jobs import Status
from shared.jobspec import JobSpec
from shared.toolspecs import tool_schemas

_PATH_PARAMETER = re.compile(r"{(\w+)}")

ERROR = {
    "type": "object",
    "required": ["error", "status"],
    "properties": {
        "error": {"type": "string"},
        "status": {"type": "integer"},
        "errors": {"type": "array", "items": {
            "type": "object", "required": ["field", "message"],
            "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
        }},
        "dependency": {"type": "string", "description": "503: the server that did not "
                       "answer (mongodb, rabbitmq)"},
    },
}
STATUS = {"type": "integer", "enum": [s.value for s in Status],
          "description": ", ".join(f"{s.value} {s.text}" for s in Status)}
NULLABLE_STRING = {"type": ["string", "null"]}
OUTPUT = {"type": "object", "properties": {
    "path": {"type": "string"}, "size": {"type": "integer"},
    "url": {**NULLABLE_STRING, "description": "presigned, valid for an hour"},
}}
TASK = {"type": "object", "properties": {
    "id": {"type": "integer"}, "tool": {"type": "string"},
    "parameters": {"type": "object", "description": "credentials redacted"},
    "status": STATUS, "status_text": {"type": "string"},
    "progress": {"type": "number"}, "attempts": {"type": "integer"},
    "error": {"type": ["object", "null"]}, "outputs": {"type": "array", "items": OUTPUT},
    "result": {"type": "object"}, "started": NULLABLE_STRING, "finished": NULLABLE_STRING,
}}
JOB = {"type": "object", "properties": {
    "id": {"type": "string"}, "url": {"type": "string"},
    "tasks": {"type": "array", "items": TASK},
    "notify": NULLABLE_STRING, "organization": NULLABLE_STRING,
    "organization_id": NULLABLE_STRING, "user": NULLABLE_STRING,
    "status": STATUS, "status_text": {"type": "string"},
    "created": {"type": "string"}, "modified": {"type": "string"},
    "finished": NULLABLE_STRING, "project_offer": NULLABLE_STRING,
    "purchase_order": NULLABLE_STRING, "purchase_order_id": NULLABLE_STRING,
    "job_bundle": NULLABLE_STRING, "job_bundle_id": NULLABLE_STRING,
    "tags": {"type": "array", "items": {"type": "string"}},
    "region": {"type": "string"}, "role_arn": NULLABLE_STRING,
}}
JOB_PAGE = {"type": "object", "properties": {
    "count": {"type": "integer"}, "next": NULLABLE_STRING, "previous": NULLABLE_STRING,
    "results": {"type": "array", "items": {"$ref": "#/components/schemas/Job"}},
}}
TASK_LOGS = {"type": "object", "properties": {
    "logs": {"type": "array", "items": {"type": "object", "properties": {
        "timestamp": {"type": "integer", "description": "unix seconds"},
        "message": {"type": "string"}}}},
    "next": {**NULLABLE_STRING, "description": "cursor of the next page, when there is one"},
    "cursor": {**NULLABLE_STRING, "description": "resume here for lines written later"},
}}
JOB_LOG = {"type": "array", "items": {"type": "object", "properties": {
    "date": {"type": "string", "description": "ISO 8601, UTC"},
    "message": {"type": "string"}}}}
BUNDLE = {"type": "object", "properties": {
    "id": {"type": "string"}, "name": {"type": "string"}, "organization": {"type": "string"},
    "organization_id": {"type": "string"}, "created": {"type": "string"}}}
NEW_BUNDLE = {"type": "object", "required": ["name"], "properties": {
    "name": {"type": "string"}, "organization_name": {"type": "string"}}}
JOB_METRICS = {"type": "object", "properties": {
    "id": {"type": "string"},
    "cus": {"type": "number", "description": "CPU minutes of the tools' subprocesses"},
    "video_minutes_in": {"type": "number"}, "video_minutes_out": {"type": "number"},
    "gb_in": {"type": "number", "description": "10^9 bytes fetched"},
    "gb_out": {"type": "number", "description": "10^9 bytes stored"}}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _operation(route: Route) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PATH_PARAMETER.findall(route.path)
    ]
    parameters += [{"name": name, "in": "query", "required": False, "schema": {"type": kind}}
                   for name, kind in route.query]
    operation: dict[str, Any] = {
        "summary": route.summary,
        "operationId": route.handler.__name__,
        "responses": {
            str(code): ({"description": schema,
                         "content": {"application/json": {"schema": _ref(schema)}}}
                        if schema else {"description": "no content"})
            # Any route may meet a store or broker that does not answer (shared/health.py).
            for code, schema in {**route.responses, 503: "Error"}.items()
        },
    }
    if parameters:
        operation["parameters"] = parameters
    if route.request_schema:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(route.request_schema)}},
        }
    return operation


def openapi_document(routes: list[Route], server_url: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    job_spec = JobSpec.model_json_schema(ref_template="#/components/schemas/{model}")
    definitions = job_spec.pop("$defs", {})
    return {
        "openapi": "3.1.0",
        "info": {"title": "Conveyor Jobs API", "version": "1",
                 "description": "Jobs of tool tasks. Authenticate with "
                                "`Authorization: api-key KEY`."},
        "servers": [{"url": server_url}],
        "security": [{"apiKey": []}, {"basic": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"apiKey": {"type": "apiKey", "in": "header",
                                           "name": "Authorization",
                                           "description": "api-key KEY"},
                                "basic": {"type": "http", "scheme": "basic",
                                          "description": "the key's id (before the dot) as "
                                                         "user name, the rest as password"}},
            "schemas": {"JobSpec": job_spec, **definitions, "Job": JOB, "JobPage": JOB_PAGE,
                        "TaskLogs": TASK_LOGS, "JobLog": JOB_LOG,
                        "Bundle": BUNDLE, "NewBundle": NEW_BUNDLE, "JobMetrics": JOB_METRICS,
                        "BundleList": {"type": "array", "items": BUNDLE},
                        "Error": ERROR, "Me": me.SCHEMA, **gate_schemas.SCHEMAS,
                        **{f"{name.replace(':', '.')}.parameters": schema
                           for name, schema in tool_schemas().items()}},
        },
    }
