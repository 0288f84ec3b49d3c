"""OpenAPI schemas of the GATE Cloud-style API: request bodies from their models, answers
written out as records.py, specs.py, control.py and data.py build them. Each also has the
seed's XML form (`Accept: application/xml` asks for it): the `xml` names are its elements."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

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
from services.gateway.gatecloud.records import STATES
from services.gateway.schemas import (
    INTEGER,
    NUMBER,
    STATUS_TEXT,
    STRING,
    TIMESTAMP,
    array,
    obj,
    ref,
)
from shared.gate import INPUT_TYPES, OUTPUT_TYPES

BOOLEAN = {"type": "boolean"}
NULLABLE_NUMBER = {"type": ["number", "null"]}
STATE = {"type": "string", "enum": list(STATES)}
ATTRIBUTE = {**NUMBER, "xml": {"attribute": True}}
GATE_JOB = obj({
    "id": STRING, "url": STRING, "name": STRING, "uuid": STRING, "state": STATE,
    "price": obj({"setup": ATTRIBUTE, "hour": ATTRIBUTE, "mib": ATTRIBUTE}),
    "dateCreated": TIMESTAMP,
    "dateCompleted": {**TIMESTAMP, "description": "once COMPLETED"},
    "resultsAvailableUntil": {**TIMESTAMP, "description": "once COMPLETED"},
    "resultBundle": {**STRING, "description": "once COMPLETED, with the default location"},
    "timeUsed": {**NUMBER, "description": "seconds; once started"},
    "timeCharged": {**INTEGER, "description": "started seconds"},
    "bytesUsed": INTEGER, "bytesCharged": {**INTEGER, "description": "started MiB, in bytes"},
}, optional=("dateCompleted", "resultsAvailableUntil", "resultBundle", "timeUsed",
             "timeCharged", "bytesUsed", "bytesCharged"), xml="job")
OWN_BUCKET = {"accessKey": STRING, "endpoint": STRING}
APPLICATION = obj({
    "location": STRING, "fileName": STRING,
    "putUrl": {**STRING, "description": "a fresh presigned upload URL, for an uploaded one"},
    "uploaded": BOOLEAN, **OWN_BUCKET,
}, optional=("location", "fileName", "putUrl", "uploaded", *OWN_BUCKET), xml="application")
OUTPUT_DIRECTORY = obj({"defaultLocation": BOOLEAN, "s3Location": STRING, **OWN_BUCKET},
                       optional=("defaultLocation", "s3Location", *OWN_BUCKET),
                       xml="outputDirectory")
INPUT_VIEW = obj({
    "url": STRING, "id": STRING, "sourceBundle": {**STRING, "description": "its URL"},
    "type": {"enum": list(INPUT_TYPES)}, "encoding": STRING,
    "mimeTypeOverride": STRING, "fileExtensions": STRING, "mimeTypes": STRING,
}, optional=("encoding", "mimeTypeOverride", "fileExtensions", "mimeTypes"), xml="input")
OUTPUT_VIEW = obj({
    "url": STRING, "id": STRING,
    "type": {"enum": list(OUTPUT_TYPES)},
    "fileExtension": STRING, "annotationSelectors": STRING, "indexUrl": STRING,
    "username": STRING,
}, optional=("fileExtension", "annotationSelectors", "indexUrl", "username"), xml="output")
SUMMARY_REPORT = obj({
    "job": {**STRING, "description": "the job's URL"}, "name": STRING, "state": STATE,
    "run": {**INTEGER, "description": "how many times the job was started"},
    "runStatus": {**STATUS_TEXT, "type": ["string", "null"], "enum": [*STATUS_TEXT["enum"],
                                                                        None]},
    "documentsProcessed": INTEGER, "documentsFailed": INTEGER,
    "annotations": {**INTEGER, "description": "annotations written"},
    "filesWritten": INTEGER, "documentsIndexed": INTEGER, "bytesRead": INTEGER,
    "runSeconds": {**NULLABLE_NUMBER, "description": "the run's own time, as it reported"},
    "error": {"type": ["string", "null"], "description": "why the run failed"},
    "timeUsed": NUMBER, "bytesUsed": INTEGER,
    "failures": {**array(obj({"document": STRING, "reason": STRING}), xml="failures",
                         item_xml="failure"),
                 "description": "the first 1000 documents that failed, and why"},
}, xml="report")
FILE = obj({"name": STRING, "size": INTEGER, "url": STRING})
DATA_BUNDLE = obj({
    "id": STRING, "url": STRING, "name": STRING, "type": {"enum": ["UPLOAD", "RESULT"]},
    "dateCreated": TIMESTAMP, "size": INTEGER,
    "files": array(FILE, xml="files", item_xml="file"),
    "fileName": {**STRING, "description": "UPLOAD"}, "putUrl": {**STRING, "description":
                                                                "UPLOAD: PUT the file here"},
    "uploaded": {**BOOLEAN, "description": "UPLOAD"},
    "job": {**STRING, "description": "RESULT: the URL of the job that wrote it"},
}, optional=("fileName", "putUrl", "uploaded", "job"), xml="bundle")
DATA_BUNDLE_ITEM = obj({"id": STRING, "url": STRING, "name": STRING,
                        "type": {"enum": ["UPLOAD", "RESULT"]}})
SCHEMAS: dict[str, Any] = {
    "GateJob": GATE_JOB,
    "GateJobList": array(obj({"url": STRING, "state": STATE, "id": STRING, "name": STRING}),
                         xml="jobs", item_xml="job"),
    "Application": APPLICATION,
    "OutputDirectory": OUTPUT_DIRECTORY,
    "InputSpecView": INPUT_VIEW,
    "OutputSpecView": OUTPUT_VIEW,
    "InputSpecList": array(ref("InputSpecView"), xml="inputs", item_xml="input"),
    "OutputSpecList": array(ref("OutputSpecView"), xml="outputs", item_xml="output"),
    "ReportList": array(STRING, xml="reports", item_xml="report"),
    "SummaryReport": SUMMARY_REPORT,
    "DataBundle": DATA_BUNDLE,
    "DataBundleList": array(DATA_BUNDLE_ITEM, xml="bundles", item_xml="bundle"),
}
# Request bodies, by their name in the document, and the root element of their XML form
# (the one each handler passes to `read_body`).
BODIES: dict[str, tuple[type[BaseModel], str]] = {
    "NewJob": (NewJob, "job"),
    "JobChanges": (JobChanges, "job"),
    "ApplicationChange": (ApplicationChange, "application"),
    "OutputDirectoryChange": (OutputDirectoryChange, "outputDirectory"),
    "InputSpec": (InputSpec, "input"),
    "OutputSpec": (OutputSpec, "output"),
    "Control": (Control, "control"),
    "NewDataBundle": (NewBundle, "bundle"),
}
