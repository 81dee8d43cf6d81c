"""Run directories and ``init.from`` sources at fsspec URLs (``file://``, ``memory://``, ``s3://``, ...).

A run whose ``output.dir`` is a URL trains in a local staging copy of the run directory
(one per process under ``$KPLUG_CACHE_DIR/remote-runs``, default ``~/.cache/kplug``, removed when
the process exits); ``RemoteRunDir.push``
copies what changed to the URL after every checkpoint and when the run ends or stops, so a
killed run loses no more than it would on a local disk. Each file and each checkpoint directory
is uploaded under a ``.partial-*`` name first and then renamed into place, so a reader never
sees half a checkpoint (on object stores, where a rename is a copy, a checkpoint appears once
all its files are there). ``RemoteRunDir.pull`` brings a run back for ``--resume``, ``evaluate``
and ``predict``. Mounted shared file systems need none of this: give their path as a plain
path; local checkpoints are already written and renamed atomically.

URL schemes need their fsspec package (``s3fs`` for ``s3://``, ``gcsfs`` for ``gs://``).
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

import keras

from kplug.cache import cache_dir
from kplug.errors import ConfigError

PARTIAL = ".partial-"


def is_url(value: str | Path | None) -> bool:
    """Whether ``value`` is a URL with a scheme (``memory://runs/a``), not a local path."""
    return isinstance(value, str) and "://" in value


def _filesystem(url: str, field: str) -> tuple[Any, str]:
    try:
        import fsspec
    except ImportError:
        raise ConfigError(
            f"{field} = {url!r} is a URL, which needs fsspec: pip install 'kplug[remote]' "
            f"(plus s3fs for s3://, gcsfs for gs://), or give a local path."
        ) from None
    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as error:
        raise ConfigError(f"{field} = {url!r}: fsspec cannot open it ({error}).") from None


def staging_root() -> Path:
    """Where local copies of remote run directories live."""
    return cache_dir() / "remote-runs"


class RemoteRunDir:
    """A run directory at ``url`` with a local staging copy that training reads and writes.

    Args:
        url: the fsspec URL of the run directory.
        field: the config field or argument it came from, for error messages.
    """

    def __init__(self, url: str, field: str = "output.dir") -> None:
        self.url = url.rstrip("/")
        self.field = field
        self.fs, self.root = _filesystem(self.url, field)
        self.root = self.root.rstrip("/")
        # one staging copy per process (ranks of a group on one host do not share it), removed at exit
        staging_root().mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256(self.url.encode()).hexdigest()[:12]
        process_dir = tempfile.mkdtemp(prefix=f"{digest}-", dir=staging_root())
        atexit.register(shutil.rmtree, process_dir, ignore_errors=True)
        self.staging = Path(process_dir) / "run"
        self._pushed: dict[str, tuple[int, int]] = {}  # relative path -> (size, mtime_ns) uploaded

    def start_new(self, overwrite: bool) -> Path:
        """Prepare a new run at the URL: an empty staging directory; the URL must hold nothing
        (or is cleared when ``overwrite``)."""
        if self.holds_files():
            if not overwrite:
                raise ConfigError(
                    f"{self.field} = {self.url!r} already holds files. Write elsewhere (another URL), "
                    f"continue that run with kplug train --resume {self.url} (Python: "
                    f"kplug.fit(config, resume={self.url!r})), or set output.overwrite: true."
                )
            self.remove()
        self.clear_staging()
        return self.staging

    def write_text(self, relative: str, text: str) -> None:
        """Write one file of the run at the URL (partial name first, then renamed)."""
        local = self.staging / relative
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_text(text)
        self._put_atomically(relative)

    def holds_files(self) -> bool:
        """Whether anything is stored at the URL."""
        return self.fs.exists(self.root) and bool(self.fs.ls(self.root, detail=False))

    def clear_staging(self) -> None:
        """Start from an empty local copy."""
        shutil.rmtree(self.staging, ignore_errors=True)
        self.staging.parent.mkdir(parents=True, exist_ok=True)

    def remove(self) -> None:
        """Delete the run at the URL (``output.overwrite``)."""
        if self.fs.exists(self.root):
            self.fs.rm(self.root, recursive=True)

    def pull(self) -> Path:
        """Copy the run at the URL into the staging directory (leftover partial uploads skipped)."""
        self.clear_staging()
        self.staging.mkdir(parents=True)
        if not self.fs.exists(self.root):
            raise ConfigError(f"{self.field} = {self.url!r}: nothing is stored there.")
        for remote in self.fs.find(self.root):
            relative = remote[len(self.root) :].lstrip("/")
            if any(part.startswith(PARTIAL) for part in relative.split("/")):
                continue
            local = self.staging / relative
            local.parent.mkdir(parents=True, exist_ok=True)
            self.fs.get_file(remote, str(local))
        self._pushed = self._local_files()
        return self.staging

    def _local_files(self) -> dict[str, tuple[int, int]]:
        found = {}
        if self.staging.is_dir():
            for path in self.staging.rglob("*"):
                relative = path.relative_to(self.staging).as_posix()
                if path.is_file() and PARTIAL not in relative:
                    stat = path.stat()
                    found[relative] = (stat.st_size, stat.st_mtime_ns)
        return found

    def push(self) -> None:
        """Upload what changed in the staging directory since the last push; delete what went.

        A new checkpoint directory is uploaded whole under a partial name, then renamed.
        """
        current = self._local_files()
        changed = [path for path, mark in current.items() if self._pushed.get(path) != mark]
        gone = [path for path in self._pushed if path not in current]
        new_checkpoints = sorted(
            {path.rsplit("/", 1)[0] for path in changed if path.startswith("checkpoints/")}
            - {path.rsplit("/", 1)[0] for path in self._pushed if path.startswith("checkpoints/")}
        )
        for directory in new_checkpoints:
            partial = f"{self.root}/checkpoints/{PARTIAL}{uuid.uuid4().hex}"
            self.fs.makedirs(partial, exist_ok=True)
            for path in changed:
                if path.rsplit("/", 1)[0] == directory:
                    self.fs.put_file(str(self.staging / path), f"{partial}/{path.rsplit('/', 1)[1]}")
            self.fs.mv(partial, f"{self.root}/{directory}", recursive=True)
        for path in changed:
            if path.rsplit("/", 1)[0] in new_checkpoints:
                continue
            self._put_atomically(path)
        for directory in sorted({path.rsplit("/", 1)[0] for path in gone if path.startswith("checkpoints/")}):
            if not (self.staging / directory).exists() and self.fs.exists(f"{self.root}/{directory}"):
                self.fs.rm(f"{self.root}/{directory}", recursive=True)
        for path in gone:
            if not path.startswith("checkpoints/") and self.fs.exists(f"{self.root}/{path}"):
                self.fs.rm(f"{self.root}/{path}")
        self._pushed = current

    def _put_atomically(self, relative: str) -> None:
        target = f"{self.root}/{relative}"
        parent, _, name = target.rpartition("/")
        partial = f"{parent}/{PARTIAL}{uuid.uuid4().hex}-{name}"
        self.fs.makedirs(parent, exist_ok=True)
        self.fs.put_file(str(self.staging / relative), partial)
        self.fs.mv(partial, target)


class PushAfterCheckpoints(keras.callbacks.Callback):
    """Uploads the staging directory after every epoch, and after a batch that wrote a checkpoint.

    Placed after the checkpointers, so what it uploads is complete. ``after_batches`` is whether
    checkpoints are written between epochs (``output.checkpoint_every_steps``); without it the
    checkpoints folder is not listed after every batch.
    """

    def __init__(self, remote: RemoteRunDir, after_batches: bool = True) -> None:
        super().__init__()
        self.remote = remote
        self.after_batches = after_batches
        self._checkpoints = remote.staging / "checkpoints"
        self._seen = self._listing()

    def _listing(self) -> frozenset[str]:
        return frozenset(os.listdir(self._checkpoints)) if self._checkpoints.is_dir() else frozenset()

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if not self.after_batches:
            return
        listing = self._listing()
        if listing != self._seen:
            self._seen = listing
            self.remote.push()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._seen = self._listing()
        self.remote.push()


def local_copy(source: str, field: str) -> str:
    """A local path holding ``source`` (a URL is downloaded into a folder removed at exit)."""
    if not is_url(source):
        return source
    fs, root = _filesystem(source, field)
    root = root.rstrip("/")
    if not fs.exists(root):
        raise ConfigError(f"{field} = {source!r}: nothing is stored there.")
    staging_root().mkdir(parents=True, exist_ok=True)
    process_dir = tempfile.mkdtemp(prefix="source-", dir=staging_root())
    atexit.register(shutil.rmtree, process_dir, ignore_errors=True)
    target = Path(process_dir) / Path(root).name
    if fs.isdir(root):
        for remote in fs.find(root):
            local = target / remote[len(root) :].lstrip("/")
            local.parent.mkdir(parents=True, exist_ok=True)
            fs.get_file(remote, str(local))
    else:
        fs.get_file(root, str(target))
    return str(target)
