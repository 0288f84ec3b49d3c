"""The OpenAPI 3.1 document of the API, built from the route table and the models. It
validates with openapi-spec-validator, and schemathesis checks the server against it
(tests/integration/test_openapi.py)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel

from services.gateway import bundles, me
from services.gateway import schemas as api_schemas
from services.gateway.gatecloud import schemas as gate_schemas
from services.gateway.routes import Route
from services.gateway.schemas import STRING, ref
from shared.jobspec import JobSpec
from shared.toolspecs import PARAMETERS

_PATH_PARAMETER = re.compile(r"{(\w+)}")
# The GATE Cloud-style routes answer XML when asked (`Accept`) and read XML bodies
# (`Content-Type`); every route's errors come in either form (shared/api.py).
_NEGOTIATES = re.compile(r"^/api/(job|data)(/|$)")
JSON, XML = "application/json", "application/xml"
REF_TEMPLATE = "#/components/schemas/{model}"
HEADERS: dict[int, dict[str, Any]] = {
    303: {"Location": {"description": "the URL of what was made", "required": True,
                       "schema": STRING}},
    401: {"WWW-Authenticate": {"required": True, "schema": {"const": "api-key"}}},
    429: {"Retry-After": {"description": "seconds", "required": True,
                          "schema": {"type": "string", "pattern": "^[0-9]+$"}}},
    503: {"Retry-After": {"description": "seconds", "required": True,
                          "schema": {"type": "string", "pattern": "^[0-9]+$"}}},
}


def model_schemas(models: Mapping[str, type[BaseModel]]) -> dict[str, Any]:
    """Each model's JSON Schema under its name, and beside them the models they nest:
    pydantic puts those in a `$defs` of each schema, which the document's `#/$defs/...`
    would look for at its own root."""
    found: dict[str, Any] = {}

    def add(name: str, schema: dict[str, Any]) -> None:
        if found.setdefault(name, schema) != schema:
            raise ValueError(f"two different schemas named {name!r}")

    for name, model in models.items():
        schema = model.model_json_schema(ref_template=REF_TEMPLATE)
        for nested, definition in schema.pop("$defs", {}).items():
            add(nested, definition)
        add(name, schema)
    return found


def _response(code: int, schema: str, negotiates: bool) -> dict[str, Any]:
    """`schema`: what the answer holds; for a redirect, what its `Location` leads to (its
    own body is only a note for people, and documented as none)."""
    phrase = HTTPStatus(code).phrase
    redirect = 300 <= code < 400
    response: dict[str, Any] = {"description": f"{phrase}: to the {schema}" if redirect
                                else phrase}
    if code in HEADERS:
        response["headers"] = HEADERS[code]
    if schema and not redirect:
        types = [JSON, XML] if negotiates or schema == "Error" else [JSON]
        response["content"] = {media: {"schema": ref(schema)} for media in types}
    return response


def _operation(route: Route) -> dict[str, Any]:
    negotiates = bool(_NEGOTIATES.match(route.path))
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True,
         "schema": {"type": "string", "minLength": 1}}
        for name in _PATH_PARAMETER.findall(route.path)
    ]
    parameters += [{"name": name, "in": "query", "required": False, "schema": {"type": kind}}
                   for name, kind in route.query]
    # What any route may answer besides its own: no or a bad key, a body that is not one,
    # and a store or broker that does not answer (shared/health.py).
    common = {401: "Error", 503: "Error"}
    if route.request_schema:
        common |= {400: "Error", 413: "Error"}
    operation: dict[str, Any] = {
        "summary": route.summary,
        "operationId": route.operation_id,
        "responses": {str(code): _response(code, schema, negotiates)
                      for code, schema in sorted({**common, **route.responses}.items())},
    }
    if parameters:
        operation["parameters"] = parameters
    if route.request_schema:
        body = {JSON: {"schema": ref(route.request_schema)}}
        if negotiates:
            body[XML] = {"schema": ref(route.request_schema)}
        operation["requestBody"] = {"required": True, "content": body}
    return operation


def component_schemas() -> dict[str, Any]:
    bodies = {name: model for name, (model, _) in gate_schemas.BODIES.items()}
    generated = model_schemas({
        "JobSpec": JobSpec, "NewBundle": bundles.NewBundle, **bodies,
        **{f"{tool.replace(':', '.')}.parameters": model for tool, model in PARAMETERS.items()},
    })
    for name, (_, root) in gate_schemas.BODIES.items():
        generated[name] = {**generated[name], "xml": {"name": root}}
    written = {**api_schemas.SCHEMAS, "Me": me.SCHEMA, **gate_schemas.SCHEMAS}
    if clash := set(generated) & set(written):
        raise ValueError(f"schemas written and generated under one name: {sorted(clash)}")
    return {**written, **generated}


def openapi_document(routes: list[Route], server_url: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {"title": "Conveyor Jobs API", "version": "1",
                 "description": "Jobs of tool tasks, and a GATE Cloud-compatible job API. "
                                "Authenticate with `Authorization: api-key KEY`, or HTTP Basic "
                                "(key id : secret)."},
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
            "schemas": component_schemas(),
        },
    }
