"""sgw's Python driver chassis: `python3 chassis.py <mode>` runs ONE method of a Python driver for
a driver actor, one call at a time. Standard library only.

Protocol (sgw_pipe framing) on file descriptors 3 (actor -> chassis) and 4 (chassis -> actor), so
whatever the driver prints to stdout or stderr only reaches the actor's log:
  start  actor sends config JSON, secrets JSON, driver source (three byte strings);
         chassis answers 0 ready, 1 failed, 2 this driver does not implement the mode.
  call   actor sends the encoded DriverRequest, the chunk (may be empty), a count of string
         arguments and each argument, then the key of the request's shared block_vec (empty:
         none) and its encoding (empty: sent before under that key); chassis answers rc (0 or a
         negative errno) and a byte string: the output bytes (read, serialize, deserialize,
         cdn_url) or an error message.
  upcall during a call the chassis may send 3 and a JSON metadata command (crawl()); the actor
         answers one integer. Replies are never positive, so the actor tells the two apart.
  crawl  (an acquisition gateway's crawler) the request frame is empty; the chassis calls
         next_dataset(config, secrets), which calls crawl() for each entry, and answers 0 and
         b"1" (call again) or b"0" (the data set is crawled).
EOF closes the chassis: it calls driver_shutdown() and exits.
"""
import asyncio
import errno
import inspect
import io
import json
import os
import sys
import threading
import time
import traceback
import types

from sgw_pipe import PipeError, PipeReader, PipeWriter
from syndicate.protobufs.sg_pb2 import DecodeError, DriverRequest
import syndicate.util.gateway as gateway

IN_FD, OUT_FD = 3, 4
READY, FAILED, NOT_IMPLEMENTED = 0, 1, 2
UPCALL_CRAWL = 3
MAX_ARGS = 8
# Shared block_vecs kept, by key: twice as many as the actor counts on (BLOCK_VECS_SENT).
BLOCK_VECS_KEPT = 16

METHOD_OF_MODE = {
    "read": "read_chunk", "write": "write_chunk", "delete": "delete_chunk", "rename": "rename_file",
    "serialize": "serialize", "deserialize": "deserialize", "cdn_url": "cdn_url", "refresh": "refresh",
    "crawl": "next_dataset",
}


class ChunkSink(io.BytesIO):
    """read_chunk's chunk_fd: a file-like object keeping what the driver writes, up to `limit` bytes."""

    def __init__(self, limit):
        super().__init__()
        self.limit = limit
        self.overflowed = False

    def write(self, data):
        if self.tell() + len(data) > self.limit:
            self.overflowed = True  # the call then fails with -EFBIG, whatever the driver does
            raise OSError(errno.EFBIG, "chunk is larger than %d bytes" % self.limit)
        return super().write(data)


_accepts = {}


def accepts(fn):
    """How many leading positional arguments fn takes (drivers may omit the trailing config, secrets)."""
    if fn not in _accepts:
        _accepts[fn] = count_positional(fn)
    return _accepts[fn]


def count_positional(fn):
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 5
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return 5
    return sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))


def invoke(fn, *args):
    result = fn(*args[:accepts(fn)])
    if inspect.iscoroutine(result):
        result = asyncio.run(result)
    return result


def rc_of(value, method):
    if value is None or value is True:
        return 0, b""
    if isinstance(value, int) and not isinstance(value, bool) and value <= 0:
        return value, b""
    return -errno.EIO, ("%s returned %.40r; expected 0 or a negative errno" % (method, value)).encode()


def bytes_of(value, method):
    if isinstance(value, (bytes, bytearray, memoryview)):
        return 0, bytes(value)
    if isinstance(value, str):
        return 0, value.encode("utf-8")
    if isinstance(value, int) and not isinstance(value, bool):
        return rc_of(value, method)
    return -errno.EIO, ("%s returned %s; expected bytes or a negative errno" % (method, type(value).__name__)).encode()


def run_call(mode, fn, method, request, chunk, args, config, secrets, limit):
    """Calls the mode's method with the seeds' arguments; returns (rc, bytes)."""
    if mode == "read":
        sink = ChunkSink(limit)
        try:
            rc, msg = rc_of(invoke(fn, request, sink, config, secrets), method)
        except OSError:
            if not sink.overflowed:
                raise
        if sink.overflowed:
            return -errno.EFBIG, b"read_chunk wrote more than %d bytes" % limit
        return (rc, msg) if rc != 0 else (0, sink.getvalue())
    if mode == "write":
        return rc_of(invoke(fn, request, chunk, config, secrets), method)
    if mode in ("delete", "refresh"):
        return rc_of(invoke(fn, request, config, secrets), method)
    if mode == "rename":
        old_path = args[0] if len(args) > 0 else request.path
        new_path = args[1] if len(args) > 1 else request.new_path
        return rc_of(invoke(fn, request, old_path, new_path, config, secrets), method)
    if mode in ("serialize", "deserialize"):
        return bytes_of(invoke(fn, request, chunk, config, secrets), method)
    if mode == "cdn_url":
        value = invoke(fn, request, args[0] if args else "", config, secrets)
        if isinstance(value, str) and value:
            return 0, value.encode("utf-8")
        return rc_of(value, method) if isinstance(value, int) else (-errno.ENODATA, b"cdn_url gave no URL")
    if mode == "crawl":
        more = invoke(fn, config, secrets)
        if isinstance(more, int) and not isinstance(more, bool) and more < 0:
            return rc_of(more, method)
        return 0, b"1" if more else b"0"
    raise AssertionError("unknown mode %s" % mode)


def watch_parent():
    """Exits when the driver actor is gone, even while the driver is stuck in a call."""
    parent = os.getppid()
    while True:
        time.sleep(1)
        if os.getppid() != parent:
            os._exit(1)


def load_driver(source, filename):
    module = types.ModuleType("driver")
    module.__file__ = filename
    sys.modules["driver"] = module
    exec(compile(source, filename, "exec"), module.__dict__)
    return module


def start(mode, reader, writer):
    """Reads config, secrets and code; loads the driver; returns (module, method) or exits."""
    def give_up(status, why):
        gateway.log_error("chassis %s: %s" % (mode, why))
        writer.write_int(status)
        writer.flush()
        sys.exit(0 if status == NOT_IMPLEMENTED else 2)

    config_bytes, secrets_bytes, source = reader.read_bytes(), reader.read_bytes(), reader.read_bytes()
    try:
        config, secrets = json.loads(config_bytes or b"{}"), json.loads(secrets_bytes or b"{}")
    except ValueError as err:
        give_up(FAILED, "config or secrets are not JSON: %s" % err)
    if not isinstance(config, dict) or not isinstance(secrets, dict):
        give_up(FAILED, "config and secrets must be JSON objects")
    try:
        module = load_driver(source, os.environ.get("SGW_DRIVER_FILE", "driver.py"))
    except BaseException:
        give_up(FAILED, "the driver failed to load:\n" + traceback.format_exc())
    method = os.environ.get("SGW_DRIVER_METHOD") or METHOD_OF_MODE[mode]  # the gateway's name wins
    if not callable(getattr(module, method, None)):
        give_up(NOT_IMPLEMENTED, "the driver has no %s()" % method)
    module.CONFIG, module.SECRETS = config, secrets  # where the original chassis left them
    init = getattr(module, "driver_init", None)
    if callable(init):
        try:
            ok = invoke(init, config, secrets)
        except BaseException:
            give_up(FAILED, "driver_init raised:\n" + traceback.format_exc())
        if ok is False:
            give_up(FAILED, "driver_init returned False")
    return module, method, config, secrets


def shared_block_vec(kept, key, encoded):
    """The block ids of a POST, decoded once per chassis (each call gets its own copy of the list)."""
    if encoded:
        holder = DriverRequest()
        holder._merge(memoryview(encoded), 0, len(encoded))
        kept[key] = holder.block_vec
        while len(kept) > BLOCK_VECS_KEPT:
            del kept[next(iter(kept))]
    if key not in kept:
        raise DecodeError("block_vec %r was never sent" % key)
    return kept[key]


def main():
    mode = sys.argv[1] if len(sys.argv) == 2 else None
    try:
        reader = PipeReader(io.open(IN_FD, "rb", buffering=1 << 16), int(os.environ.get("SGW_MAX_FRAME_BYTES", 64 << 20)))
        writer = PipeWriter(io.open(OUT_FD, "wb", buffering=1 << 16))
    except OSError as err:
        sys.stderr.write("chassis: file descriptors 3 and 4 must be the driver actor's pipes (%s)\n" % err)
        sys.exit(1)
    for fd in (IN_FD, OUT_FD):
        os.set_inheritable(fd, False)  # the driver's own subprocesses must not hold the pipes
    sys.stdout.reconfigure(line_buffering=True)
    threading.Thread(target=watch_parent, daemon=True).start()
    if mode not in METHOD_OF_MODE:
        sys.stderr.write("usage: chassis.py <%s>\n" % "|".join(METHOD_OF_MODE))
        writer.write_int(FAILED)
        writer.flush()
        sys.exit(1)

    def crawl_upcall(cmd):
        writer.write_int(UPCALL_CRAWL)
        writer.write_bytes(json.dumps(cmd).encode("utf-8"))
        writer.flush()
        try:
            return reader.read_int()
        except (EOFError, PipeError) as err:
            # raised inside the driver, these could be swallowed by its own except clauses
            sys.stderr.write("chassis %s: no answer to crawl(): %s\n" % (mode, err))
            os._exit(3)

    block_vecs = {}

    try:
        module, method, config, secrets = start(mode, reader, writer)
        fn = getattr(module, method)
        writer.write_int(READY)
        writer.flush()
        while True:
            request_bytes, chunk = reader.read_bytes(), reader.read_bytes()
            nargs = reader.read_int()
            if not 0 <= nargs <= MAX_ARGS:
                raise PipeError("%d arguments is out of bounds (0..%d)" % (nargs, MAX_ARGS))
            args = [reader.read_bytes().decode("utf-8", "replace") for _ in range(nargs)]
            vec_key, vec_bytes = reader.read_bytes(), reader.read_bytes()
            try:
                request = None if mode == "crawl" else DriverRequest.FromString(request_bytes)
                if request is not None and vec_key:
                    request.block_vec = list(shared_block_vec(block_vecs, vec_key, vec_bytes))
                    request._present.add("block_vec")
            except DecodeError as err:
                rc, out = -errno.EINVAL, ("undecodable DriverRequest: %s" % err).encode()
            else:
                gateway._crawl_channel = crawl_upcall
                try:
                    rc, out = run_call(mode, fn, method, request, chunk, args, config, secrets, reader.max_bytes)
                except Exception as err:
                    traceback.print_exc()
                    rc, out = -errno.EIO, ("%s raised %s: %s" % (method, type(err).__name__, err)).encode()[:2000]
                finally:
                    gateway._crawl_channel = None
            if len(out) > reader.max_bytes:
                rc, out = -errno.EFBIG, b"%s gave %d bytes; at most %d fit" % (method.encode(), len(out), reader.max_bytes)
            writer.write_int(rc)
            writer.write_bytes(out)
            writer.flush()
    except EOFError:
        shutdown = getattr(sys.modules.get("driver"), "driver_shutdown", None)
        if callable(shutdown):
            shutdown()
        sys.exit(0)
    except PipeError as err:
        sys.stderr.write("chassis %s: protocol error from the driver actor: %s\n" % (mode, err))
        sys.exit(3)


if __name__ == "__main__":
    main()
