"""OpenAPI schemas of the GATE Cloud-style API: request bodies from their models, answers
written out (each also has the seed's XML form; `Accept: application/xml` asks for it)."""

from __future__ import annotations

from typing import Any

from services.gateway.gatecloud.bodies import (
    ApplicationChange,
    Control,
    InputSpec,
    JobChanges,
    NewBundle,
    NewJob,
    OutputDirectoryChange,
    OutputSpec,
)

STRING = {"type": "string"}
NUMBER = {"type": "number"}
INTEGER = {"type": "integer"}
STATE = {"type": "string",
         "enum": ["RESERVED", "READY", "ACTIVE", "COMPLETED", "DELETED", "SUSPENDED"]}
GATE_JOB = {"type": "object", "required": ["id", "name", "uuid", "state", "price"],
            "properties": {
    "id": STRING, "url": STRING, "name": STRING, "uuid": STRING, "state": STATE,
    "price": {"type": "object", "properties": {"setup": NUMBER, "hour": NUMBER, "mib": NUMBER}},
    "dateCreated": STRING, "dateCompleted": STRING, "resultsAvailableUntil": STRING,
    "resultBundle": STRING, "timeUsed": NUMBER, "timeCharged": INTEGER,
    "bytesUsed": INTEGER, "bytesCharged": INTEGER,
}}
FILE = {"type": "object", "properties": {"name": STRING, "size": INTEGER, "url": STRING}}
DATA_BUNDLE = {"type": "object", "properties": {
    "id": STRING, "url": STRING, "name": STRING, "type": {"enum": ["UPLOAD", "RESULT"]},
    "fileName": STRING, "putUrl": STRING, "uploaded": {"type": "boolean"},
    "job": STRING, "size": INTEGER, "files": {"type": "array", "items": FILE},
}}
SCHEMAS: dict[str, Any] = {
    "GateJob": GATE_JOB,
    "GateJobList": {"type": "array", "items": {"type": "object", "properties": {
        "url": STRING, "state": STATE, "id": STRING, "name": STRING}}},
    "Application": {"type": "object", "properties": {
        "location": STRING, "fileName": STRING, "putUrl": STRING, "uploaded": {"type": "boolean"},
        "accessKey": STRING, "endpoint": STRING}},
    "OutputDirectory": {"type": "object", "properties": {
        "defaultLocation": {"type": "boolean"}, "s3Location": STRING, "accessKey": STRING,
        "endpoint": STRING}},
    "InputSpecView": {"type": "object", "properties": {
        "url": STRING, "id": STRING, "sourceBundle": STRING, "type": STRING}},
    "OutputSpecView": {"type": "object", "properties": {
        "url": STRING, "id": STRING, "type": STRING}},
    "InputSpecList": {"type": "array", "items": {"$ref": "#/components/schemas/InputSpecView"}},
    "OutputSpecList": {"type": "array", "items": {"$ref": "#/components/schemas/OutputSpecView"}},
    "ReportList": {"type": "array", "items": STRING},
    "SummaryReport": {"type": "object", "properties": {
        "state": STATE, "run": INTEGER, "documentsProcessed": INTEGER,
        "documentsFailed": INTEGER, "failures": {"type": "array"}, "timeUsed": NUMBER,
        "bytesUsed": INTEGER}},
    "DataBundle": DATA_BUNDLE,
    "DataBundleList": {"type": "array", "items": DATA_BUNDLE},
    **{model.__name__: model.model_json_schema() for model in (
        NewJob, JobChanges, ApplicationChange, OutputDirectoryChange, InputSpec, OutputSpec,
        Control)},
    "NewDataBundle": NewBundle.model_json_schema(),
}
