"""The message schema in docs/ is the one the code validates with."""

import json
from pathlib import Path

from services.worker.tools import TOOLS
from shared.messages import dump_schema, json_schema
from shared.toolspecs import PARAMETERS

ROOT = Path(__file__).resolve().parents[2]


def test_docs_schema_is_current() -> None:
    documented = (ROOT / "docs" / "messages.schema.json").read_text()
    assert documented == dump_schema(), "run: conveyor schema > docs/messages.schema.json"
    assert json.loads(documented) == json_schema()


def test_every_tool_has_a_schema_and_every_schema_a_tool() -> None:
    assert set(TOOLS) == set(PARAMETERS)


def test_every_setting_is_in_the_readme() -> None:
    from shared.settings import setting_variables

    readme = (ROOT / "README.md").read_text()
    missing = [name for name in sorted(setting_variables())
               if name not in readme and name.removeprefix("CONVEYOR") not in readme]
    assert missing == [], "document these in the README's settings table"
