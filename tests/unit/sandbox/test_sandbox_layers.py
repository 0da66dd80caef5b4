"""Layer unpacking: order, permissions, links, and refusal of entries that would escape /opt."""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path

import pytest

from sandbox.layers import LayerError, unpack_layers


def _zip(path: Path, entries: dict[str, tuple[str, int]]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, (content, mode) in entries.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            archive.writestr(info, content)
    return path


def test_later_layers_win_and_earlier_files_stay(tmp_path: Path) -> None:
    first = tmp_path / "first"
    (first / "python").mkdir(parents=True)
    (first / "python" / "shared.py").write_text("first")
    (first / "python" / "mine.py").write_text("first only")
    second = _zip(tmp_path / "second.zip", {"python/shared.py": ("second", stat.S_IFREG | 0o644)})
    opt = tmp_path / "opt"
    opt.mkdir()
    unpack_layers([first, second], opt)
    assert (opt / "python" / "shared.py").read_text() == "second"
    assert (opt / "python" / "mine.py").read_text() == "first only"


def test_zip_keeps_execute_bits_and_symlinks(tmp_path: Path) -> None:
    layer = _zip(tmp_path / "layer.zip", {
        "extensions/launcher": ("#!/bin/sh\n", stat.S_IFREG | 0o755),
        "bin/tool": ("tool", stat.S_IFREG | 0o644),
        "bin/alias": ("tool", stat.S_IFLNK | 0o777),
    })
    opt = tmp_path / "opt"
    opt.mkdir()
    unpack_layers([layer], opt)
    assert os.access(opt / "extensions" / "launcher", os.X_OK)
    assert not os.access(opt / "bin" / "tool", os.X_OK)
    assert os.readlink(opt / "bin" / "alias") == "tool"


def test_directory_layers_keep_links_and_modes(tmp_path: Path) -> None:
    layer = tmp_path / "layer"
    (layer / "extensions").mkdir(parents=True)
    script = layer / "extensions" / "ext"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    os.symlink("ext", layer / "extensions" / "link")
    opt = tmp_path / "opt"
    opt.mkdir()
    unpack_layers([layer], opt)
    assert os.access(opt / "extensions" / "ext", os.X_OK)
    assert (opt / "extensions" / "link").is_symlink()


@pytest.mark.parametrize("name", ["../escape.txt", "/etc/absolute.txt", "python/../../escape.txt"])
def test_entries_escaping_opt_are_refused(tmp_path: Path, name: str) -> None:
    layer = _zip(tmp_path / "evil.zip", {name: ("x", stat.S_IFREG | 0o644)})
    opt = tmp_path / "opt"
    opt.mkdir()
    with pytest.raises(LayerError, match="outside /opt"):
        unpack_layers([layer], opt)
    assert not (tmp_path / "escape.txt").exists()


def test_writing_through_a_planted_link_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    layer = _zip(tmp_path / "evil.zip", {
        "sneaky": (str(outside), stat.S_IFLNK | 0o777),
        "sneaky/payload": ("x", stat.S_IFREG | 0o644),
    })
    opt = tmp_path / "opt"
    opt.mkdir()
    with pytest.raises(LayerError):
        unpack_layers([layer], opt)
    assert not (outside / "payload").exists()


def test_not_a_layer(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.txt"
    bogus.write_text("not a zip")
    with pytest.raises(LayerError, match="neither"):
        unpack_layers([bogus], tmp_path)


def test_a_missing_layer_is_named_as_missing(tmp_path: Path) -> None:
    with pytest.raises(LayerError, match=r"'.*gone\.zip': no such file or directory"):
        unpack_layers([tmp_path / "gone.zip"], tmp_path / "opt")
