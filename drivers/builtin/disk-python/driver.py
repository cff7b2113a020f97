"""The built-in replica gateway (RG) disk driver in Python, twin of ../disk/driver.ts: each chunk is
one file under STORAGE_DIR, at the layout Syndicate back-ends use (request_to_storage_path).
Copy this folder to start a Python driver.

Every method returns 0 or a negative errno. Chunks are immutable and any call may be retried, so
each method must be safe to run twice.
"""
import errno
import os
import tempfile

from syndicate.util.gateway import log_debug, log_error, request_to_storage_path


def _storage_dir(config):
    """STORAGE_DIR from config.json (a relative one was made absolute against the driver folder when it was published)."""
    d = config.get("STORAGE_DIR")
    return os.path.abspath(d) if isinstance(d, str) and d else None


def _chunk_path(request, config):
    d = _storage_dir(config)
    return None if d is None else os.path.join(d, request_to_storage_path(request))


def _negative_errno(err):
    return -(err.errno or errno.EIO)


def driver_init(driver_config, driver_secrets):
    """Refuses to start without a usable STORAGE_DIR."""
    d = _storage_dir(driver_config)
    if d is None:
        log_error("disk driver: config.json must set STORAGE_DIR")
        return False
    try:
        os.makedirs(d, exist_ok=True)
        return True
    except OSError as err:
        log_error("disk driver: cannot create STORAGE_DIR %s: %s" % (d, err))
        return False


def read_chunk(request, chunk_fd, driver_config, driver_secrets):
    """Writes the stored chunk to chunk_fd; -ENOENT when there is no such chunk (HTTP 404)."""
    path = _chunk_path(request, driver_config)
    if path is None:
        return -errno.EINVAL
    limit = getattr(chunk_fd, "limit", None)
    try:
        with open(path, "rb") as f:
            if limit is not None and os.fstat(f.fileno()).st_size > limit:
                return -errno.EFBIG
            chunk = f.read()
    except OSError as err:
        log_debug("disk driver: read %s: %s" % (path, err))
        return _negative_errno(err)
    chunk_fd.write(chunk)
    return 0


def _stored(path, chunk):
    """Whether the chunk is stored at path already: "absent", "same" (these bytes) or "different"."""
    try:
        with open(path, "rb") as f:
            if os.fstat(f.fileno()).st_size != len(chunk):
                return "different"
            return "same" if f.read() == bytes(chunk) else "different"
    except FileNotFoundError:
        return "absent"


def _refuse_rewrite(path):
    log_debug("disk driver: %s is stored with other bytes; refusing to replace it" % path)
    return -errno.EEXIST


def _make_folder(folder):
    """Makes folder and its missing parents; returns the folders whose entries change: folder
    itself (the chunk's name goes there) and the parent of every folder made."""
    made = []
    d = folder
    while not os.path.isdir(d):
        made.append(d)
        d = os.path.dirname(d)
    if made:
        os.makedirs(folder, exist_ok=True)
    return [folder] + [os.path.dirname(m) for m in made]


def _sync_folders(folders):
    """fsync of a file makes its bytes durable, not the name that leads to them: a name linked
    after it, or a folder made for it, survives a power loss only once its folder is flushed."""
    for folder in folders:
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_chunk(request, chunk, driver_config, driver_secrets):
    """Stores the chunk atomically: readers see the whole chunk or none of it, never a torn file.

    Chunks are immutable: a stored chunk is never replaced. A retry with the same bytes succeeds
    without writing again; other bytes get -EEXIST. The file appears by os.link, which fails rather
    than replace a file a concurrent writer put there first.
    """
    path = _chunk_path(request, driver_config)
    if path is None:
        return -errno.EINVAL
    temp = None
    try:
        # A 200 on a write promises the chunk is on disk under its name: its bytes, then its name.
        before = _stored(path, chunk)
        if before == "different":
            return _refuse_rewrite(path)
        folder = os.path.dirname(path)
        if before == "same":
            _sync_folders([folder])  # an earlier attempt may have stopped before flushing it
            return 0
        folders = _make_folder(folder)
        fd, temp = tempfile.mkstemp(dir=folder, prefix=os.path.basename(path) + ".", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(temp, path)
        except FileExistsError:
            if _stored(path, chunk) != "same":
                return _refuse_rewrite(path)
        _sync_folders(folders)
        return 0
    except OSError as err:
        log_error("disk driver: write %s: %s" % (path, err))
        return _negative_errno(err)
    finally:
        if temp is not None:
            try:
                os.remove(temp)
            except OSError:
                pass


def delete_chunk(request, driver_config, driver_secrets):
    """Removes the chunk; a chunk that is already gone counts as deleted (the call may be a retry)."""
    path = _chunk_path(request, driver_config)
    if path is None:
        return -errno.EINVAL
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
    except OSError as err:
        log_error("disk driver: delete %s: %s" % (path, err))
        return _negative_errno(err)
    return 0


def rename_file(request, old_path, new_path, driver_config, driver_secrets):
    """Nothing to do: this layout is keyed by file id, not by path."""
    return 0
