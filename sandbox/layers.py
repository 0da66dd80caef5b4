"""Unpack layers into the sandbox's opt directory, in order, so that a later layer's file wins."""

from __future__ import annotations

import os
import shutil
import stat
import zipfile
from collections.abc import Iterable
from pathlib import Path


class LayerError(ValueError):
    """A layer that cannot be unpacked safely (not a zip, or an entry escaping the opt directory)."""


def unpack_layers(layers: Iterable[Path], opt_dir: Path) -> None:
    for layer in layers:
        if not layer.exists():
            raise LayerError(f"layer {str(layer)!r}: no such file or directory")
        if layer.is_dir():
            _merge_directory(layer, opt_dir)
        elif zipfile.is_zipfile(layer):
            _extract_zip(layer, opt_dir)
        else:
            raise LayerError(f"layer {str(layer)!r} is neither a directory nor a zip file")


def _clear(path: Path, keep_dir: bool) -> None:
    """Make room for a new entry: a later layer replaces what an earlier one put there."""
    if path.is_symlink() or (path.exists() and not path.is_dir()):
        path.unlink()
    elif path.is_dir() and not keep_dir:
        shutil.rmtree(path)


def _merge_directory(source: Path, opt_dir: Path) -> None:
    for directory, subdirs, files in os.walk(source):
        relative = Path(directory).relative_to(source)
        target_dir = opt_dir / relative
        _clear(target_dir, keep_dir=True)
        target_dir.mkdir(parents=True, exist_ok=True)
        for name in list(subdirs):
            entry = Path(directory) / name
            if entry.is_symlink():  # os.walk does not descend into links: copy the link itself
                subdirs.remove(name)
                files.append(name)
        for name in files:
            entry, target = Path(directory) / name, target_dir / name
            _clear(target, keep_dir=False)
            if entry.is_symlink():
                os.symlink(os.readlink(entry), target)
            else:
                shutil.copy2(entry, target)


def _extract_zip(archive: Path, opt_dir: Path) -> None:
    root = opt_dir.resolve()
    with zipfile.ZipFile(archive) as zipped:
        for info in zipped.infolist():
            name = info.filename.rstrip("/")
            if not name:
                continue
            destination = opt_dir / name
            # refuse absolute names, '..', and writing through a link an earlier entry planted
            if name.startswith("/") or ".." in Path(name).parts or not _inside(destination.parent.resolve(), root):
                raise LayerError(f"layer {archive.name}: entry {info.filename!r} would land outside /opt")
            mode = info.external_attr >> 16
            if info.is_dir():
                _clear(destination, keep_dir=True)
                destination.mkdir(parents=True, exist_ok=True)
                continue
            destination.parent.mkdir(parents=True, exist_ok=True)
            _clear(destination, keep_dir=False)
            if stat.S_ISLNK(mode):
                os.symlink(zipped.read(info).decode(), destination)
                continue
            with zipped.open(info) as source, open(destination, "wb") as sink:
                shutil.copyfileobj(source, sink)
            # zipfile drops permissions; Lambda keeps them (extensions and wrappers must stay executable)
            if mode & 0o777:
                os.chmod(destination, mode & 0o777)


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents
