"""The messages a driver receives (DriverRequest, with its Manifest and ManifestBlock), decoded by
a small hand-written protobuf (proto2) reader: the chassis uses the standard library only.

Field numbers and types are those of proto/sg.proto. Unset fields read as protobuf's defaults
(0, "", [], an empty Manifest); HasField() tells whether a field was present on the wire.
"""

MASK64 = (1 << 64) - 1
MASK32 = (1 << 32) - 1


class DecodeError(ValueError):
    """The bytes are not a valid encoding of the message."""


def _read_varint(buf, pos, end):
    if pos < end and buf[pos] < 0x80:  # one byte: most keys and small values
        return buf[pos], pos + 1
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise DecodeError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise DecodeError("varint longer than 10 bytes")


def _signed(v, bits):
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


# How each scalar type is read from a varint.
_SCALARS = {
    "uint64": lambda v: v & MASK64,
    "int64": lambda v: _signed(v, 64),
    "uint32": lambda v: v & MASK32,
    "int32": lambda v: _signed(v, 32),
    "bool": lambda v: v != 0,
}
_DEFAULTS = {"uint64": 0, "int64": 0, "uint32": 0, "int32": 0, "bool": False, "string": "", "bytes": b""}


class Message(object):
    # field number -> (name, type, repeated); type is a scalar name, "string", "bytes" or a Message class
    FIELDS = {}
    REQUIRED = ()

    def __init_subclass__(cls):
        # Unset scalars read as class-level defaults, so creating a message costs little.
        for name, kind, repeated in cls.FIELDS.values():
            if not repeated and not isinstance(kind, type):
                setattr(cls, name, _DEFAULTS[kind])

    def __init__(self, **values):
        self._present = set()
        for name, kind, repeated in self.FIELDS.values():
            if repeated:
                setattr(self, name, [])
            elif isinstance(kind, type):
                setattr(self, name, kind())  # an unset sub-message reads as an empty one
        for name, value in values.items():
            setattr(self, name, value)
            self._present.add(name)

    def HasField(self, name):
        return name in self._present

    def ListFields(self):
        return [(name, getattr(self, name)) for name, _, _ in self.FIELDS.values() if name in self._present]

    def ParseFromString(self, data):
        self.__init__()
        self._parse(data)
        return len(data)

    @classmethod
    def FromString(cls, data):
        msg = cls()
        msg._parse(data)
        return msg

    def _parse(self, data):
        self._merge(memoryview(bytes(data)), 0, len(data))
        missing = [n for n in self.REQUIRED if n not in self._present]
        if missing:
            raise DecodeError("%s is missing required fields: %s" % (type(self).__name__, ", ".join(missing)))

    def _merge(self, buf, pos, end):
        while pos < end:
            key, pos = _read_varint(buf, pos, end)
            number, wire = key >> 3, key & 7
            field = self.FIELDS.get(number)
            if wire == 0:
                value, pos = _read_varint(buf, pos, end)
                if field:
                    self._set_scalar(field, value)
            elif wire == 2:
                length, pos = _read_varint(buf, pos, end)
                if length > end - pos:
                    raise DecodeError("field %d runs past the end of the message" % number)
                if field:
                    self._set_delimited(field, buf, pos, pos + length)
                pos += length
            elif wire == 1:
                pos += 8
            elif wire == 5:
                pos += 4
            else:
                raise DecodeError("unsupported wire type %d" % wire)
            if pos > end:
                raise DecodeError("truncated fixed-width field")

    def _set_scalar(self, field, raw):
        name, kind, repeated = field
        if kind not in _SCALARS:
            raise DecodeError("field %s is not a varint" % name)
        value = _SCALARS[kind](raw)
        if repeated:
            getattr(self, name).append(value)
        else:
            setattr(self, name, value)
        self._present.add(name)

    def _set_delimited(self, field, buf, start, end):
        name, kind, repeated = field
        if isinstance(kind, type):
            sub = kind()
            sub._merge(buf, start, end)
            value = sub
        elif kind == "string":
            try:
                value = bytes(buf[start:end]).decode("utf-8")
            except UnicodeDecodeError:
                raise DecodeError("field %s is not valid UTF-8" % name)
        elif kind == "bytes":
            value = bytes(buf[start:end])
        elif repeated and kind in _SCALARS:
            pos = start  # packed repeated scalars
            while pos < end:
                raw, pos = _read_varint(buf, pos, end)
                getattr(self, name).append(_SCALARS[kind](raw))
            self._present.add(name)
            return
        else:
            raise DecodeError("field %s is not length-delimited" % name)
        if repeated:
            getattr(self, name).append(value)
        else:
            setattr(self, name, value)
        self._present.add(name)

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__, ", ".join("%s=%r" % kv for kv in self.ListFields()))


class ManifestBlock(Message):
    FIELDS = {
        1: ("block_id", "uint64", False), 2: ("block_version", "int64", False), 3: ("hash", "bytes", False),
        4: ("owner_id", "uint64", False), 5: ("caps", "uint32", False), 6: ("chunk_type", "int32", False),
        7: ("offset", "uint64", False), 8: ("size", "uint64", False), 9: ("logical_offset", "uint64", False),
        10: ("logical_len", "uint64", False),
    }
    REQUIRED = ("block_id", "block_version")
    BLOCK = 1
    MANIFEST = 2


class Manifest(Message):
    FIELDS = {
        1: ("volume_id", "uint64", False), 2: ("coordinator_id", "uint64", False), 3: ("owner_id", "uint64", False),
        4: ("file_id", "uint64", False), 5: ("file_version", "int64", False), 6: ("mtime_sec", "int64", False),
        7: ("mtime_nsec", "int32", False), 8: ("size", "uint64", False), 9: ("blocks", ManifestBlock, True),
        10: ("signature", "string", False),
    }


class DriverRequest(Message):
    FIELDS = {
        1: ("volume_id", "uint64", False), 2: ("user_id", "uint64", False), 3: ("coordinator_id", "uint64", False),
        4: ("file_id", "uint64", False), 5: ("file_version", "uint64", False), 6: ("request_type", "uint32", False),
        7: ("path", "string", False), 8: ("block_id", "uint64", False), 9: ("block_version", "int64", False),
        10: ("manifest_mtime_sec", "int64", False), 11: ("manifest_mtime_nsec", "int32", False),
        12: ("offset", "uint64", False), 13: ("len", "uint64", False), 14: ("io_context", "uint64", False),
        15: ("io_type", "int32", False), 16: ("cached_blocks", "bool", True), 17: ("manifest", Manifest, False),
        18: ("block_size", "uint64", False), 19: ("block_vec", "uint64", True), 20: ("new_path", "string", False),
    }
    REQUIRED = ("volume_id", "user_id", "coordinator_id", "file_id", "file_version", "request_type", "path")
    # request_type
    BLOCK = 1
    MANIFEST = 2
    RENAME_HINT = 3
    # io_type
    NONE = 0
    READ = 1
    WRITE = 2
    SYNC = 3
    DELETE = 4
