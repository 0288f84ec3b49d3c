"""A client of the GATE Cloud-style API that speaks JSON or the seed's XML, for the tests:
bodies are sent and answers read in the chosen format, so one scenario runs in both."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from tests.platform import Account, Client

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "gate"
# List answers: their root element and the element of each item.
LIST_ROOTS = {"jobs", "inputs", "outputs", "reports", "log", "bundles", "files", "failures",
              "validStates", "missing", "errors"}


def api_path(url: str) -> str:
    """The path of one of the API's own URLs (answers carry them whole)."""
    return url[url.index("/api/"):]


def zip_folder(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()


def xml_body(root: str, fields: dict[str, Any]) -> bytes:
    element = ET.Element(root)
    for key, value in fields.items():
        child = ET.SubElement(element, key)
        if value is None:
            child.set("{http://www.w3.org/2001/XMLSchema-instance}nil", "true")
        else:
            child.text = str(value).lower() if isinstance(value, bool) else str(value)
    return bytes(ET.tostring(element, encoding="utf-8"))


def from_element(element: ET.Element) -> Any:
    """An answer's XML as JSON-shaped data: lists by their root's name, attributes as keys."""
    children = list(element)
    if element.tag in LIST_ROOTS:
        return [from_element(child) for child in children]
    if not children:
        if element.attrib:
            return {**element.attrib, **({"#text": element.text} if element.text else {})}
        return element.text or ""
    return {child.tag: from_element(child) for child in children}


@dataclass
class GateApi:
    client: Client
    account: Account
    xml: bool

    @property
    def headers(self) -> dict[str, str]:
        accept = "application/xml" if self.xml else "application/json"
        return {**self.account.headers, "Accept": accept}

    async def call(self, method: str, path: str, root: str = "",
                   fields: dict[str, Any] | None = None) -> tuple[int, Any, Any]:
        """(status, answer as data, headers); redirects are not followed."""
        kwargs: dict[str, Any] = {"headers": dict(self.headers), "allow_redirects": False}
        if fields is not None:
            if self.xml:
                kwargs["data"] = xml_body(root, fields)
                kwargs["headers"]["Content-Type"] = "application/xml"
            else:
                kwargs["json"] = fields
        response = await self.client.request(method, path, **kwargs)
        raw = await response.read()
        data: Any = None
        if raw and response.content_type == "application/xml":
            assert self.xml, f"XML answered to a JSON client: {raw[:200]!r}"
            data = from_element(ET.fromstring(raw))
        elif raw and response.content_type == "application/json":
            assert not self.xml or response.status >= 500, f"JSON answered to XML: {raw[:200]!r}"
            data = await response.json()
        return response.status, data, response.headers

    async def ok(self, method: str, path: str, root: str = "",
                 fields: dict[str, Any] | None = None, status: int = 200) -> Any:
        got, data, _ = await self.call(method, path, root, fields)
        assert got == status, (method, path, got, data)
        return data

    async def created_spec(self, job: str, kind: str, fields: dict[str, Any]) -> str:
        """Add an input or output spec: 303 to its URL; returns the URL's path."""
        status, data, headers = await self.call("POST", f"/api/job/{job}/{kind}", kind, fields)
        assert status == 303, (status, data)
        return api_path(headers["Location"])

    async def control(self, job: str, action: str) -> tuple[int, Any]:
        status, data, _ = await self.call("POST", f"/api/job/{job}/control", "control",
                                          {"action": action})
        return status, data

    async def state(self, job: str) -> str:
        details = await self.ok("GET", f"/api/job/{job}")
        state: str = details["state"]
        return state


async def upload(put_url: str, data: bytes) -> None:
    """PUT a file to a presigned URL as the seed says: octet-stream, exact length."""
    async with aiohttp.ClientSession() as session, session.put(
        put_url, data=data, headers={"Content-Type": "application/octet-stream"},
    ) as response:
        assert response.status == 200, await response.text()


async def download(url: str) -> bytes:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200, await response.text()
        return await response.read()
