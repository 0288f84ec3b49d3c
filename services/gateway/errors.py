"""Errors the API answers with: a status, a message, and for bad input the fields at fault."""

from __future__ import annotations


class ApiError(Exception):
    def __init__(
        self, status: int, message: str, errors: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors or []
        self.headers = headers or {}

    def body(self) -> dict[str, object]:
        body: dict[str, object] = {"error": self.message, "status": self.status}
        if self.errors:
            body["errors"] = self.errors
        return body


def bad_request(errors: list[dict[str, str]], message: str = "invalid request") -> ApiError:
    return ApiError(400, message, errors)


def not_found(what: str) -> ApiError:
    return ApiError(404, f"{what} not found")
