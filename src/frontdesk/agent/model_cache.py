"""Trained weights kept on disk between processes, so a process does not retrain at start.

The lexical crisis screen trains in about 8 s (pure Python); every ``frontdesk classify``,
``serve`` and ``worker`` paid that at start. The weights depend only on what ships in the
package (the examples, the lexicons that hide idioms, the code that reads them), so they are
kept under a key made of all of it: the bytes of every file of ``frontdesk.agent`` (modules and
lexicons) and the training settings. Any change to those trains again. A cache that cannot be
read or written (a read-only home, a container) only means training at start, as before.

Where: ``$FRONTDESK_CACHE_DIR``, else ``$XDG_CACHE_HOME/frontdesk``, else
``~/.cache/frontdesk``. Nothing in it is secret or about patients.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def cache_dir() -> Path:
    explicit = os.environ.get("FRONTDESK_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "frontdesk"


@cache
def package_digest() -> str:
    """A digest of every file of ``frontdesk.agent`` (once per process)."""
    digest = hashlib.sha256()
    root = resources.files("frontdesk.agent")
    for name, data in sorted(_files(root, "")):
        digest.update(name.encode())
        digest.update(b"\0")
        digest.update(data)
    return digest.hexdigest()


def _files(folder: Traversable, prefix: str) -> list[tuple[str, bytes]]:
    found: list[tuple[str, bytes]] = []
    for item in folder.iterdir():
        if item.name == "__pycache__" or item.name.startswith("."):
            continue
        name = prefix + item.name
        if item.is_dir():
            found += _files(item, name + "/")
        elif item.name.endswith((".py", ".txt", ".tsv", ".md")):
            found.append((name, item.read_bytes()))
    return found


def key_for(name: str, settings: dict[str, Any]) -> str:
    material = json.dumps([name, settings, package_digest()], sort_keys=True)
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def read(name: str, key: str) -> dict[str, Any] | None:
    """What ``write`` kept under ``name`` for ``key``, or None."""
    path = cache_dir() / f"{name}.json"
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(stored, dict) or stored.get("key") != key:
        return None
    value = stored.get("value")
    return value if isinstance(value, dict) else None


def write(name: str, key: str, value: dict[str, Any]) -> None:
    """Keep ``value`` under ``name`` for ``key``, atomically (concurrent writers each replace
    the file whole); failures are logged, never raised."""
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=folder, prefix=f".{name}.", delete=False
        ) as handle:
            json.dump({"key": key, "value": value}, handle)
        os.replace(handle.name, folder / f"{name}.json")
    except OSError as exc:
        log.info("model cache not written", extra={"cache": name, "error": type(exc).__name__})
