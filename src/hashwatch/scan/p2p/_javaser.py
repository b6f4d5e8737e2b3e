"""A bounded reader of Java's Object Serialization Stream Protocol (the byte stream
``ObjectOutputStream`` writes), enough for the object graphs Gnutella clients written in Java
persist: ``HashMap``/``HashSet`` of ``File``, ``String``, ``Long``, enums and their own small
classes. Nothing is instantiated: objects come back as :class:`JavaObject` values naming their
class, their field values and what their ``writeObject`` methods wrote.

Grammar and constants from the Java Object Serialization Specification, chapter 6. Limits keep
a damaged or hostile stream from allocating: strings, arrays, block data, field counts, nesting
depth and the handle table are capped, and a value over a cap is :class:`Malformed`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from hashwatch.scan.p2p._cursor import Cursor, Malformed

__all__ = [
    "ClassDesc",
    "JavaEnum",
    "JavaObject",
    "JavaStream",
    "read_java_utf",
]

STREAM_MAGIC, STREAM_VERSION = 0xACED, 5
TC_NULL, TC_REFERENCE, TC_CLASSDESC, TC_OBJECT, TC_STRING, TC_ARRAY = range(0x70, 0x76)
TC_CLASS, TC_BLOCKDATA, TC_ENDBLOCKDATA, TC_RESET, TC_BLOCKDATALONG = range(0x76, 0x7B)
TC_EXCEPTION, TC_LONGSTRING, TC_PROXYCLASSDESC, TC_ENUM = range(0x7B, 0x7F)
BASE_HANDLE = 0x7E0000
SC_WRITE_METHOD, SC_SERIALIZABLE, SC_EXTERNALIZABLE, SC_BLOCK_DATA = 0x01, 0x02, 0x04, 0x08

MAX_STRING = 1 << 20  # characters' bytes in one string
MAX_ARRAY = 1 << 24  # elements in one array
MAX_BLOCK = 1 << 24  # bytes in one block-data segment
MAX_FIELDS = 1024
MAX_DEPTH = 64
MAX_HANDLES = 20_000_000
MAX_ENTRIES = 50_000_000

_HASHMAPS = ("java.util.HashMap", "java.util.LinkedHashMap")
_END = object()  # TC_ENDBLOCKDATA


@dataclass
class ClassDesc:
    name: str
    suid: int
    flags: int
    fields: list[tuple[str, str]]  # (type code, field name); object types share "L"/"["
    superclass: ClassDesc | None

    def chain(self) -> list[ClassDesc]:
        """This class and its serialisable superclasses, the topmost first (the data order)."""
        out: list[ClassDesc] = []
        desc: ClassDesc | None = self
        while desc is not None and len(out) < MAX_DEPTH:
            out.append(desc)
            desc = desc.superclass
        return out[::-1]


@dataclass
class JavaObject:
    """An object as serialised: per class in its hierarchy, field values and, where the class
    has its own ``writeObject``, what that wrote after the fields (block data as ``bytes``,
    objects as values)."""

    desc: ClassDesc
    fields: dict[str, dict[str, Any]] = field(default_factory=dict)
    annotations: dict[str, list[Any]] = field(default_factory=dict)

    @property
    def class_name(self) -> str:
        return self.desc.name


@dataclass(frozen=True)
class JavaEnum:
    class_name: str
    constant: str


def read_java_utf(raw: bytes) -> str:
    """Java's modified UTF-8: U+0000 as C0 80, characters beyond the BMP as surrogate pairs."""
    text = raw.replace(b"\xc0\x80", b"\x00").decode("utf-8", errors="surrogatepass")
    return text.encode("utf-16-le", errors="surrogatepass").decode("utf-16-le", errors="replace")


def _utf(raw: bytes) -> str:
    try:
        return read_java_utf(raw)
    except UnicodeDecodeError:
        return raw.decode("utf-8", errors="replace")


class JavaStream:
    """Reads a serialisation stream from a :class:`Cursor`, keeping the handle table."""

    def __init__(self, cur: Cursor) -> None:
        self.cur = cur
        self.handles: list[Any] = []
        self._depth = 0

    def header(self) -> None:
        magic, version = self.cur.be_u16(), self.cur.be_u16()
        if magic != STREAM_MAGIC or version != STREAM_VERSION:
            raise Malformed(f"not a Java serialisation stream (0x{magic:04x}, version {version})")

    def _new_handle(self, value: Any) -> int:
        if len(self.handles) >= MAX_HANDLES:
            raise Malformed(f"more than {MAX_HANDLES} objects")
        self.handles.append(value)
        return len(self.handles) - 1

    def _string(self, length: int) -> str:
        if length < 0 or length > MAX_STRING:
            raise Malformed(f"a string of {length} bytes (more than {MAX_STRING})")
        return _utf(self.cur.take(length))

    def _reference(self) -> Any:
        handle = self.cur.be_i32() - BASE_HANDLE
        if not 0 <= handle < len(self.handles):
            raise Malformed(f"a reference to object {handle}, of {len(self.handles)} read")
        return self.handles[handle]

    def content(self) -> Any:
        """One item: an object, string, array, enum, class, class descriptor, ``None``, or block
        data (``bytes``); ``_END`` for TC_ENDBLOCKDATA."""
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise Malformed(f"objects nested more than {MAX_DEPTH} deep")
            return self._content(self.cur.u8())
        finally:
            self._depth -= 1

    def _content(self, tc: int) -> Any:
        cur = self.cur
        if tc == TC_NULL:
            return None
        if tc == TC_REFERENCE:
            return self._reference()
        if tc == TC_STRING:
            text = self._string(cur.be_u16())
            self._new_handle(text)
            return text
        if tc == TC_LONGSTRING:
            text = self._string(cur.be_i64())
            self._new_handle(text)
            return text
        if tc == TC_OBJECT:
            return self._object()
        if tc in (TC_CLASSDESC, TC_PROXYCLASSDESC):
            return self._class_desc(tc)
        if tc == TC_ENUM:
            desc = self.class_desc()
            slot = self._new_handle(None)
            name = self.content()
            if not isinstance(name, str):
                raise Malformed("an enum constant without a name")
            value = JavaEnum(desc.name if desc else "", name)
            self.handles[slot] = value
            return value
        if tc == TC_ARRAY:
            return self._array()
        if tc == TC_CLASS:
            desc = self.class_desc()
            self._new_handle(desc)
            return desc
        if tc == TC_BLOCKDATA:
            return cur.take(cur.u8())
        if tc == TC_BLOCKDATALONG:
            length = cur.be_i32()
            if not 0 <= length <= MAX_BLOCK:
                raise Malformed(f"block data of {length} bytes")
            return cur.take(length)
        if tc == TC_ENDBLOCKDATA:
            return _END
        if tc == TC_RESET:
            self.handles.clear()
            return self._content(cur.u8())
        if tc == TC_EXCEPTION:
            raise Malformed("the writer recorded an exception in the stream")
        raise Malformed(f"unknown stream element 0x{tc:02x} at byte {cur.offset - 1}")

    def class_desc(self) -> ClassDesc | None:
        """A class descriptor, a reference to one, or ``None``."""
        tc = self.cur.u8()
        if tc == TC_NULL:
            return None
        if tc == TC_REFERENCE:
            desc = self._reference()
            if not isinstance(desc, ClassDesc):
                raise Malformed("a class reference to something that is not a class")
            return desc
        if tc in (TC_CLASSDESC, TC_PROXYCLASSDESC):
            return self._class_desc(tc)
        raise Malformed(f"stream element 0x{tc:02x} where a class was expected")

    def _class_desc(self, tc: int) -> ClassDesc:
        cur = self.cur
        if tc == TC_PROXYCLASSDESC:
            desc = ClassDesc("<proxy>", 0, SC_SERIALIZABLE, [], None)
            self._new_handle(desc)
            count = cur.be_i32()
            if not 0 <= count <= MAX_FIELDS:
                raise Malformed(f"a proxy class with {count} interfaces")
            for _ in range(count):
                self._string(cur.be_u16())
        else:
            name = self._string(cur.be_u16())
            suid = cur.be_i64()
            desc = ClassDesc(name, suid, 0, [], None)
            self._new_handle(desc)
            desc.flags = cur.u8()
            count = cur.be_u16()
            if count > MAX_FIELDS:
                raise Malformed(f"a class with {count} fields")
            for _ in range(count):
                code = chr(cur.u8())
                fname = self._string(cur.be_u16())
                if code in "L[":
                    if not isinstance(self.content(), str):
                        raise Malformed(f"field {fname} of {name} has no type name")
                elif code not in "BCDFIJSZ":
                    raise Malformed(f"field {fname} of {name} has type code {code!r}")
                desc.fields.append((code, fname))
        self._annotation()
        desc.superclass = self.class_desc()
        return desc

    def _annotation(self) -> list[Any]:
        items: list[Any] = []
        while True:
            item = self.content()
            if item is _END:
                return items
            if len(items) >= MAX_ARRAY:
                raise Malformed(f"more than {MAX_ARRAY} items written by one writeObject")
            items.append(item)

    def _value(self, code: str) -> Any:
        cur = self.cur
        if code in "L[":
            return self.content()
        if code == "I":
            return cur.be_i32()
        if code == "J":
            return cur.be_i64()
        if code == "Z":
            return cur.u8() != 0
        if code == "B":
            return int.from_bytes(cur.take(1), "big", signed=True)
        if code == "S":
            return int.from_bytes(cur.take(2), "big", signed=True)
        if code == "C":
            return chr(cur.be_u16())
        if code == "F":
            return cur.be_f32()
        return cur.be_f64()  # "D"

    def _object(self) -> JavaObject:
        desc = self.class_desc()
        if desc is None:
            raise Malformed("an object without a class")
        obj = JavaObject(desc)
        self._new_handle(obj)
        for cls in desc.chain():
            self._class_data(cls, obj)
        return obj

    def _class_data(self, cls: ClassDesc, obj: JavaObject) -> None:
        if cls.flags & SC_EXTERNALIZABLE:
            if not cls.flags & SC_BLOCK_DATA:
                raise Malformed(f"{cls.name} is externalised in the old protocol")
            obj.annotations[cls.name] = self._annotation()
            return
        obj.fields[cls.name] = {fname: self._value(code) for code, fname in cls.fields}
        if cls.flags & SC_WRITE_METHOD:
            obj.annotations[cls.name] = self._annotation()

    def _array(self) -> list[Any] | bytes:
        desc = self.class_desc()
        if desc is None:
            raise Malformed("an array without a class")
        slot = self._new_handle(None)
        length = self.cur.be_i32()
        if not 0 <= length <= MAX_ARRAY:
            raise Malformed(f"an array of {length} elements")
        code = desc.name[1:2]
        value: list[Any] | bytes
        value = self.cur.take(length) if code == "B" else [self._value(code) for _ in range(length)]
        self.handles[slot] = value
        return value

    def map_entries(self) -> Iterator[tuple[Any, Any]]:
        """The entries of the stream's top-level ``HashMap``, one at a time, as read: the map is
        never held whole (its keys and values stay in the handle table, as the protocol needs
        for back-references)."""
        if self.cur.u8() != TC_OBJECT:
            raise Malformed("the stream does not start with an object")
        desc = self.class_desc()
        if desc is None or not any(c.name in _HASHMAPS for c in desc.chain()):
            raise Malformed(f"the stream holds a {desc.name if desc else 'null'}, not a HashMap")
        obj = JavaObject(desc)
        self._new_handle(obj)
        for cls in desc.chain():
            if cls.name != "java.util.HashMap":
                self._class_data(cls, obj)
                continue
            for code, _fname in cls.fields:
                self._value(code)
            head = self.content()
            if not isinstance(head, bytes) or len(head) < 8:
                raise Malformed("the HashMap's capacity and size are missing")
            size = int.from_bytes(head[4:8], "big", signed=True)
            if not 0 <= size <= MAX_ENTRIES:
                raise Malformed(f"a HashMap of {size} entries")
            for _ in range(size):
                key = self.content()
                value = self.content()
                if key is _END or value is _END:
                    raise Malformed("the HashMap ends before its last entry")
                yield key, value
            if self._annotation():
                raise Malformed("data after the HashMap's last entry")

    def list_items(self) -> Iterator[Any]:
        """The elements of the stream's top-level ``ArrayList``, one at a time, as read
        (``ArrayList.writeObject``: the ``size`` field, block data holding the capacity, then
        each element); a stream holding something else is :class:`Malformed`, naming it."""
        if self.cur.u8() != TC_OBJECT:
            raise Malformed("the stream does not start with an object")
        desc = self.class_desc()
        if desc is None or desc.name != "java.util.ArrayList":
            raise Malformed(f"the stream holds a {desc.name if desc else 'null'}, not a list")
        self._new_handle(JavaObject(desc))
        size = 0
        for code, fname in desc.fields:
            value = self._value(code)
            if fname == "size" and isinstance(value, int):
                size = value
        if not 0 <= size <= MAX_ENTRIES:
            raise Malformed(f"a list of {size} elements")
        for _ in range(size):
            item = self.content()
            while isinstance(item, bytes):  # the capacity, written as block data
                item = self.content()
            if item is _END:
                raise Malformed("the list ends before its last element")
            yield item
        if self._annotation():
            raise Malformed("data after the list's last element")
