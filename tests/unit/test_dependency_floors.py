"""constraints/floor.txt pins exactly the floors setup.cfg claims (for the lowest supported Python), so the
matrix's floor cells (noxfile.py) test the claim itself."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1].parent
RUNTIME_EXTRAS = ("grpc", "sandbox")  # what runs in the function, the extension and the sandbox


def _floors() -> dict[str, str]:
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    lines = setup["options"]["install_requires"].splitlines()
    for extra in RUNTIME_EXTRAS:
        lines += setup["options.extras_require"][extra].splitlines()
    found = (re.fullmatch(r"([A-Za-z0-9_.-]+)(?:\[[^]]*\])?>=([0-9][^,;\s]*)", line.strip()) for line in lines)
    return {match.group(1).lower(): match.group(2) for match in found if match}


def _pins_for_the_lowest_python() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints" / "floor.txt").read_text().splitlines():
        requirement, _, marker = line.partition(";")
        if not requirement.strip() or requirement.startswith("#"):
            continue
        if marker and "<" not in marker:  # a pin for newer Pythons only
            continue
        name, _, version = requirement.strip().partition("==")
        pins[name.lower()] = version
    return pins


def test_every_floor_is_pinned_as_claimed() -> None:
    floors, pins = _floors(), _pins_for_the_lowest_python()
    assert len(floors) >= 8
    assert {name: pins.get(name) for name in floors} == {
        name: version if version.count(".") >= 2 else f"{version}.0" for name, version in floors.items()}
