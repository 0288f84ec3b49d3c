"""Credentials sealed at rest: what a job holds of a secret (a value under a credential-like
key, a URL's password, a secret query parameter) is stored and sent to workers encrypted
with Fernet (AES-128-CBC with HMAC-SHA256, from `cryptography`), under the keys in
`CONVEYOR_SECRETS_KEY`. Only the secret part of a string is sealed, in place, so a sealed
URL is still a URL of the same shape, and every answer masks a sealed part exactly as it
would mask the secret itself.

Rotation: `CONVEYOR_SECRETS_KEY` is a comma-separated list, newest first. New values are
sealed with the first key; every key listed still opens what it sealed (`MultiFernet`)."""

from __future__ import annotations

import re
from typing import Any

import structlog
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from shared.errors import PermanentError
from shared.messages import TaskDispatch
from shared.redaction import SECRET_KEY, replace_spans, secret_spans
from shared.settings import Settings

log = structlog.get_logger(__name__)
# In place of a secret: the marker and a Fernet token (URL-safe base64, so it stays inside
# a URL's userinfo or query value and is found there again by the same patterns).
MARKER = "~sealed~"
_SEALED = re.compile(re.escape(MARKER) + r"([A-Za-z0-9_-]+=*)")


class SealedValueError(PermanentError):
    """A sealed value that none of this process's keys opens."""


class Sealer:
    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("no key")
        self._fernet = MultiFernet([Fernet(key.encode()) for key in keys])

    def _seal_text(self, text: str) -> str:
        if text.startswith(MARKER):
            return text
        return MARKER + self._fernet.encrypt(text.encode()).decode()

    def seal(self, value: Any, secret: bool = False) -> Any:
        """A copy of `value` with every secret in it sealed; what is sealed already stays."""
        if isinstance(value, dict):
            return {key: self.seal(item, secret or bool(SECRET_KEY.search(str(key))))
                    for key, item in value.items()}
        if isinstance(value, list):
            return [self.seal(item, secret) for item in value]
        if isinstance(value, str) and value:
            if secret:
                return self._seal_text(value)
            return replace_spans(value, secret_spans(value), self._seal_text)
        return value

    def _open_text(self, text: str) -> str:
        if MARKER not in text:
            return text

        def opened(match: re.Match[str]) -> str:
            try:
                return self._fernet.decrypt(match.group(1).encode()).decode()
            except InvalidToken:
                raise SealedValueError(
                    "a credential of the task does not open with this worker's "
                    "CONVEYOR_SECRETS_KEY (it must list the key the gateway sealed it with)"
                ) from None

        return _SEALED.sub(opened, text)

    def open(self, value: Any) -> Any:
        """A copy of `value` with every sealed secret in the clear again."""
        if isinstance(value, dict):
            return {key: self.open(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.open(item) for item in value]
        if isinstance(value, str):
            return self._open_text(value)
        return value


_SEALERS: dict[tuple[str, ...], Sealer] = {}


def sealer_for(settings: Settings) -> Sealer:
    """The sealer of `settings`' keys (one per process and key list)."""
    keys = tuple(settings.secrets_keys)
    sealer = _SEALERS.get(keys)
    if sealer is None:
        sealer = _SEALERS[keys] = Sealer(list(keys))
        if "secrets_key" not in settings.model_fields_set:
            log.warning(
                "CONVEYOR_SECRETS_KEY is not set: credentials are sealed with a key made "
                "up by this process, which no other process (a worker) can open; set the "
                "same key for every service (`conveyor dev` writes one into its env file)")
    return sealer


def open_sealed(task: TaskDispatch, settings: Settings) -> dict[str, Any]:
    """A dispatched task's parameters in the clear, for the worker that runs it."""
    opened: dict[str, Any] = sealer_for(settings).open(task.parameters)
    return opened
