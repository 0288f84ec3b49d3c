"""Names people give things (jobs, bundles): shown in lists, so never blank, and kept
without the spaces around them."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

MAX_NAME_CHARS = 200


def _trimmed(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("must not be blank")
    return value


DisplayName = Annotated[str, Field(max_length=MAX_NAME_CHARS),
                        AfterValidator(_trimmed)]
