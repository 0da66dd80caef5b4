"""What the repository itself promises a reader: nothing points outside it, and no tracker numbers stand in
for saying what a piece of code or a test is about (CONTRIBUTING.md, "Code and tooling")."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {
    "a path outside the repository": re.compile(r"\.\./shared|/work/shared|\bshared/(?:STYLE|reference)"),
    "the house style outside the repository": re.compile(r"\bSTYLE\.md\b"),
    "a tracker number": re.compile(r"\b(?:issues?|tickets?|items?) #?\d+\b|(?<![\w&])#\d{1,5}\b", re.IGNORECASE),
}


def tracked_text_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=False)
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    paths = [ROOT / name for name in listed.stdout.decode().split("\0") if name]
    skipped = {ROOT / "LICENSE", Path(__file__).resolve()}  # the license's own text; the patterns above
    return [path for path in paths if path.is_file() and path not in skipped and b"\0" not in path.read_bytes()]


def test_no_file_points_outside_the_repository_or_names_a_tracker_number() -> None:
    found = []
    for path in tracked_text_files():
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            for what, pattern in FORBIDDEN.items():
                if pattern.search(line):
                    found.append(f"{path.relative_to(ROOT)}:{number}: {what}: {line.strip()[:100]}")
    assert not found, "\n".join(found)
