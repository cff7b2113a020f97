"""The pipe protocol between the driver actor and a chassis: integers as "<decimal>\\n", byte
strings as "<len>\\n<bytes>\\n". Every frame is checked; a bad one raises PipeError, and the chassis
then exits (the actor restarts it: a desynchronised pipe is never read on)."""
import re

_INT = re.compile(rb"-?[0-9]{1,20}\n\Z")


class PipeError(Exception):
    """The peer sent something that is not a frame of the protocol."""


class PipeReader(object):
    def __init__(self, raw, max_bytes):
        self._f = raw
        self.max_bytes = max_bytes

    def read_int(self):
        line = self._f.readline(24)
        if not line:
            raise EOFError("the gateway closed the pipe")
        if not _INT.match(line):
            raise PipeError("expected an integer line, got %r" % line[:24])
        return int(line[:-1])

    def read_bytes(self):
        n = self.read_int()
        if n < 0 or n > self.max_bytes:
            raise PipeError("byte string of %d bytes is out of bounds (0..%d)" % (n, self.max_bytes))
        data = self._f.read(n + 1)
        if len(data) != n + 1:
            raise EOFError("the gateway closed the pipe inside a byte string")
        if data[-1:] != b"\n":
            raise PipeError("byte string of %d bytes is not followed by a newline" % n)
        return data[:-1]


class PipeWriter(object):
    def __init__(self, raw):
        self._f = raw

    def write_int(self, i):
        self._f.write(b"%d\n" % i)

    def write_bytes(self, data):
        self._f.write(b"%d\n" % len(data))
        self._f.write(data)
        self._f.write(b"\n")

    def flush(self):
        self._f.flush()
