"""The built-in acquisition gateway (AG) dataset driver in Python, twin of ../dataset/driver.ts:
publishes the directory tree under DATASET_DIR and serves byte ranges of its files.

next_dataset() publishes every directory and file on its first call, then rescans every RESCAN_MS
(default 2000) and hands the gateway what changed: new entries, updates (size, mode or mtime
changed) and deletions (children before their directory). refresh() re-checks one path at once.
Symbolic links are never published or followed, and no path may leave DATASET_DIR.

next_dataset and refresh run in separate chassis processes, so refresh() keeps no snapshot: it
publishes what it finds at the path (a vanished path is deleted; a file is updated).
"""
import errno
import os
import stat
import threading

from syndicate.util.gateway import (
    crawl, log_error, make_metadata_command, request_byte_len, request_byte_offset, request_path,
)

# What the gateway has accepted so far, by namespace path: (ftype, size, mode, mtime_ns).
_published = None
_stopped = threading.Event()


def _dataset_dir(config):
    d = config.get("DATASET_DIR")
    return os.path.abspath(d) if isinstance(d, str) and d else None


def _rescan_s(config):
    try:
        ms = float(config.get("RESCAN_MS", 2000))
    except (TypeError, ValueError):
        ms = 2000
    return max(ms, 10) / 1000.0


def _depth(p):
    return 0 if p == "/" else p.count("/")


def _inside(p, under):
    return under == "/" or p == under or p.startswith(under + "/")


def _join(root, ns_path):
    return root if ns_path == "/" else os.path.join(root, ns_path.lstrip("/"))


def _seen_of(st):
    is_dir = stat.S_ISDIR(st.st_mode)
    return ("directory" if is_dir else "file", 4096 if is_dir else st.st_size, st.st_mode & 0o7777, st.st_mtime_ns)


def _scan(root, start):
    """Walks the tree under `start` (a namespace path) without following symbolic links."""
    found = {}
    queue = [start]
    while queue:
        ns_path = queue.pop(0)
        try:
            st = os.lstat(_join(root, ns_path))
        except OSError:
            continue  # gone while we looked: the next scan sees it missing
        if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
            continue  # links, devices, sockets are not published
        if ns_path != "/":
            found[ns_path] = _seen_of(st)
        if stat.S_ISDIR(st.st_mode):
            try:
                names = sorted(os.listdir(_join(root, ns_path)))
            except OSError:
                continue
            for name in names:
                if "\n" in name or "\0" in name:
                    continue  # cannot be named in the namespace
                queue.append("/" + name if ns_path == "/" else ns_path + "/" + name)
    return found


def _send(cmd, path, seen):
    ftype, size, mode, mtime_ns = seen
    command = make_metadata_command(cmd, ftype, None if cmd == "delete" else mode, size if ftype == "file" else None, path,
                                    5000, 0, mtime_ns / 1e9)  # published as the file's own time
    return crawl(command) if command else -errno.EINVAL


def _publish_changes(known, now, under):
    """Hands the gateway the difference between what it has under `under` and what is on disk now."""
    gone = [p for p in known if _inside(p, under) and (p not in now or now[p][0] != known[p][0])]
    for p in sorted(gone, key=lambda p: (_depth(p), p), reverse=True):
        rc = _send("delete", p, known[p])
        if rc in (0, -errno.ENOENT):
            del known[p]
    for p in sorted(now, key=lambda p: (_depth(p), p)):
        seen, old = now[p], known.get(p)
        if old == seen:
            continue
        # A changed file gets a new version (update); a new one, or one the gateway lost, is put.
        rc = _send("update" if old and seen[0] == "file" else "put", p, seen)
        if rc == -errno.ENOENT:
            rc = _send("put", p, seen)
        if rc == 0:
            known[p] = seen


def _within(root, path, must_exist):
    """Is `path` inside the dataset? No ".." or "." segments; when it must exist, no symbolic link
    on the way and a real location under DATASET_DIR."""
    if not path.startswith("/") or any(s in ("..", ".") for s in path.split("/")):
        return False
    if not must_exist:
        return True
    real_root = os.path.realpath(root)
    real = os.path.realpath(_join(root, path))
    expected = real_root if path == "/" else os.path.join(real_root, path.lstrip("/"))
    return real == expected and (real == real_root or real.startswith(real_root + os.sep))


def driver_init(driver_config, driver_secrets):
    """Refuses to start without a DATASET_DIR that is a directory."""
    root = _dataset_dir(driver_config)
    if root is None:
        log_error("dataset driver: set DATASET_DIR in the driver config.json")
        return False
    if not os.path.isdir(root):
        log_error("dataset driver: DATASET_DIR %s is not a directory" % root)
        return False
    return True


def next_dataset(driver_config, driver_secrets):
    global _published
    root = _dataset_dir(driver_config)
    if _published is None:
        _published = {}
    elif _stopped.wait(_rescan_s(driver_config)):
        return False
    _publish_changes(_published, _scan(root, "/"), "/")
    return True


def refresh(request, driver_config, driver_secrets):
    """Re-checks one path, and what lies under it, at once."""
    root = _dataset_dir(driver_config)
    path = request_path(request)
    if not _within(root, path, False):
        return -errno.EACCES
    try:
        st = os.lstat(_join(root, path))
    except FileNotFoundError:
        rc = _send("delete", path, ("file", 0, 0, 0))
        return 0 if rc in (0, -errno.ENOENT, -errno.ENOTEMPTY) else rc
    except OSError as err:
        return -(err.errno or errno.EIO)
    if stat.S_ISREG(st.st_mode):
        rc = _send("update", path, _seen_of(st))
        return _send("put", path, _seen_of(st)) if rc == -errno.ENOENT else rc
    _publish_changes({}, _scan(root, path), path)
    return 0


def read(request, chunk_fd, driver_config, driver_secrets):
    """Writes the requested byte range of the file to chunk_fd."""
    root = _dataset_dir(driver_config)
    path = request_path(request)
    offset = request_byte_offset(request) or 0
    length = request_byte_len(request) or 0
    try:
        if not _within(root, path, True):
            return -errno.EACCES
        with open(_join(root, path), "rb") as f:
            f.seek(offset)
            chunk_fd.write(f.read(length))  # a file that shrank gives what is there
        return 0
    except OSError as err:
        return -(err.errno or errno.EIO)


def driver_shutdown():
    _stopped.set()
