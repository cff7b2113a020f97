"""Syndicate's driver helper API (`syndicate.util.gateway`) for Python drivers run by sgw's chassis.

Same names and results as sgw's TypeScript helpers (drivers/helpers.ts); a test runs both on the
same requests. Requests are syndicate.protobufs.sg_pb2.DriverRequest objects.
"""
import errno
import json
import math
import os
import sys
import time

from syndicate.protobufs.sg_pb2 import DriverRequest

_KINDS = {DriverRequest.BLOCK: "block", DriverRequest.MANIFEST: "manifest", DriverRequest.RENAME_HINT: "rename_hint"}
_MAX_SAFE = (1 << 53) - 1  # the TypeScript helpers take numbers up to 2^53 - 1
METADATA_COMMANDS = ("create", "put", "update", "delete", "finish")


def request_type(request):
    """"block" | "manifest" | "rename_hint"; raises TypeError on any other request_type."""
    kind = _KINDS.get(request.request_type)
    if kind is None:
        raise TypeError("invalid driver request type %s" % request.request_type)
    return kind


def request_to_storage_path(request):
    """"{volume_id}/{FILE_ID_HEX}/{block_id}/{block_version}" for a block,
    "{volume_id}/{FILE_ID_HEX}/manifest/{sec}.{nsec}" for a manifest or rename hint."""
    prefix = "%d/%X" % (request.volume_id, request.file_id)
    if request_type(request) == "block":
        return "%s/%d/%d" % (prefix, request.block_id, request.block_version)
    return "%s/manifest/%d.%d" % (prefix, request.manifest_mtime_sec, request.manifest_mtime_nsec)


def _is_data_io(request):
    return request.io_type in (DriverRequest.READ, DriverRequest.WRITE)


def request_byte_offset(request):
    """The byte offset of a READ or WRITE in the file; None for other I/O."""
    return request.offset if _is_data_io(request) else None


def request_byte_len(request):
    """The byte length of a READ or WRITE; None for other I/O."""
    return request.len if _is_data_io(request) else None


def request_path(request):
    """The file's path in the volume."""
    return request.path


def request_new_path(request):
    """The file's new path (rename hints); None when the request carries none."""
    return request.new_path if request.HasField("new_path") else None


def path_join(a, *parts):
    """Joins paths like os.path.join, except that later parts never restart from "/"."""
    out = a
    for raw in parts:
        part = raw.strip("/")
        if part == "":
            if not out.endswith("/"):
                out += "/"
        elif out == "" or out.endswith("/"):
            out += part
        else:
            out += "/" + part
    return out


def _count(v):
    """v as a non-negative integer, or None (bools and fractions are not counts)."""
    if isinstance(v, bool):
        return None
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return v if isinstance(v, int) and 0 <= v <= _MAX_SAFE else None


def make_metadata_command(cmd, ftype, mode, size, path, read_ttl=5000, write_ttl=0, mtime=None):
    """A metadata command for crawl(), or None (logged) when malformed: unknown cmd or ftype, a path
    that is not absolute or holds a newline or NUL, a bad mode, size, TTL or mtime. put = create or
    update; a directory's size is always 4096. As in the seed, finish needs nothing else, delete needs
    no mode or size, and a directory needs no size (pass None). mtime (seconds since the epoch, e.g.
    os.stat().st_mtime; an addition to Syndicate's signature) is the time the entry shows; None: the
    time it is applied."""
    n_mode, n_size, n_read, n_write = _count(mode), _count(size), _count(read_ttl), _count(write_ttl)
    if cmd == "finish":
        return {"cmd": "finish", "ftype": "directory", "mode": 0, "size": 0, "path": "",
                "read_ttl": read_ttl, "write_ttl": write_ttl}
    deleting = cmd == "delete"
    if cmd not in METADATA_COMMANDS:
        reason = "unknown cmd %s" % json.dumps(cmd)
    elif ftype not in ("file", "directory"):
        reason = "unknown ftype %s" % json.dumps(ftype)
    elif not isinstance(path, str) or not path.startswith("/"):
        reason = "path %s is not absolute" % json.dumps(path)
    elif "\n" in path or "\0" in path:
        reason = "path %s holds a newline or NUL" % json.dumps(path)
    elif not (deleting and mode is None) and (n_mode is None or n_mode > 0o7777):
        reason = "bad mode %s" % (mode,)
    elif ftype == "file" and not deleting and n_size is None:
        reason = "bad size %s" % (size,)
    elif n_read is None or n_write is None:
        reason = "bad ttl %s/%s" % (read_ttl, write_ttl)
    elif mtime is not None and (isinstance(mtime, bool) or not isinstance(mtime, (int, float)) or not math.isfinite(mtime)):
        reason = "bad mtime %s" % (mtime,)
    else:
        reason = None
    if reason:
        log_error("make_metadata_command: %s" % reason)
        return None
    command = {"cmd": cmd, "ftype": ftype, "mode": n_mode or 0, "size": 4096 if ftype == "directory" else (n_size or 0),
               "path": path, "read_ttl": n_read, "write_ttl": n_write}
    if mtime is not None and not deleting:
        command["mtime"] = mtime
    return command


# Set by the chassis while a call runs: sends one metadata command to the gateway, returns its answer.
_crawl_channel = None


def crawl(cmd):
    """Hands one metadata command (from make_metadata_command) to the gateway and returns its answer:
    0 ok, 1 after finish, or a negative errno. -EINVAL for a malformed command; -ENOSYS where the
    gateway has no crawler (a replica gateway) or outside a driver call."""
    if not isinstance(cmd, dict) or cmd.get("cmd") not in METADATA_COMMANDS:
        return -errno.EINVAL
    if _crawl_channel is None:
        return -errno.ENOSYS
    return _crawl_channel(cmd)


def _write_log_line(level, args):
    # One JSON line per call (pino's level numbers): the gateway's log stays one line per message.
    line = json.dumps({"level": level, "time": int(time.time() * 1000), "pid": os.getpid(), "src": "driver",
                       "msg": " ".join(a if isinstance(a, str) else repr(a) for a in args)})
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass  # a closed stderr must not take the driver call down with it


def log_error(*args):
    """Logs an error line (to the driver actor's log)."""
    _write_log_line(50, args)


def log_debug(*args):
    """Logs a debug line, only when the environment sets SGW_DRIVER_DEBUG."""
    if os.environ.get("SGW_DRIVER_DEBUG"):
        _write_log_line(20, args)


def _env_int(name):
    value = os.environ.get(name)
    try:
        return int(value)
    except (TypeError, ValueError):
        raise RuntimeError("%s is %r; the chassis should have set it to an integer" % (name, value))


def get_gateway_id():
    """This gateway's id."""
    return _env_int("SYNDICATE_GATEWAY_ID")


def get_volume_id():
    """The volume this gateway serves."""
    return _env_int("SYNDICATE_VOLUME_ID")


def get_user_id():
    """The user owning this gateway."""
    return _env_int("SYNDICATE_USER_ID")


def get_config_path():
    """The gateway's configuration file, or None when it runs without one."""
    return os.environ.get("SYNDICATE_CONFIG_PATH") or None
