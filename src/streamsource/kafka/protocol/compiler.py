"""Compile a struct's field table, for one version, into a decoder and an encoder.

The codec of a (class, version) is Python source generated from the field table and
``exec``-ed once, then cached: runs of fixed-size fields become one ``struct`` call, fields
absent from the version disappear, and compact/nullable/tagged variants are chosen at
compile time. So the per-request work has no version checks, and no ``if version >= 7``
exists anywhere: the schema is the only place versions are mentioned.

    decoder(buf, pos) -> (instance, new_pos)
    encoder(instance, out: bytearray, chunks: list | None) -> None

``chunks`` collects large record data without copying it (see ``primitives.write_records``).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from streamsource.kafka.protocol import primitives as p
from streamsource.kafka.protocol.schema import (
    BYTES,
    RECORDS,
    STRING,
    STRUCT,
    UUID,
    UVARINT,
    VARINT,
    VARLONG,
    Array,
    FieldSpec,
    Kind,
    Struct,
)

Decoder = Callable[[Any, int], tuple[Any, int]]
Encoder = Callable[[Any, bytearray, "list[Any] | None"], None]

_cache: dict[tuple[type[Struct], int, bool], tuple[Decoder, Encoder]] = {}


def codec(cls: type[Struct], version: int, flexible: bool) -> tuple[Decoder, Encoder]:
    """The (decoder, encoder) of ``cls`` at ``version``; compiled on first use."""
    key = (cls, version, flexible)
    found = _cache.get(key)
    if found is None:
        found = _cache[key] = _Compiler(cls, version, flexible).build()
    return found


def min_size(cls: type[Struct], version: int, flexible: bool) -> int:
    """The fewest bytes an instance of ``cls`` can take at ``version`` (bounds array counts)."""
    size = 1 if flexible else 0
    for spec in cls.FIELDS:
        if version in spec.versions and not (flexible and spec.tag is not None):
            if spec.kind.fmt is not None:
                size += struct.calcsize(spec.kind.fmt)
            elif spec.kind is not STRUCT:
                size += spec.kind.min_size
    return max(size, 1)


# Variable-size readers/writers by (kind, compact, nullable).
_READERS: dict[tuple[Kind, bool, bool], str] = {
    (STRING, False, False): "read_string",
    (STRING, False, True): "read_nullable_string",
    (STRING, True, False): "read_compact_string",
    (STRING, True, True): "read_compact_nullable_string",
    (BYTES, False, False): "read_bytes",
    (BYTES, False, True): "read_nullable_bytes",
    (BYTES, True, False): "read_compact_bytes",
    (BYTES, True, True): "read_compact_nullable_bytes",
}
_WRITERS: dict[tuple[Kind, bool, bool], str] = {
    (STRING, False, False): "write_string",
    (STRING, False, True): "write_nullable_string",
    (STRING, True, False): "write_compact_string",
    (STRING, True, True): "write_compact_nullable_string",
    (BYTES, False, False): "write_bytes",
    (BYTES, False, True): "write_nullable_bytes",
    (BYTES, True, False): "write_compact_bytes",
    (BYTES, True, True): "write_compact_nullable_bytes",
}
_SIMPLE_READERS = {
    UUID: "read_uuid",
    UVARINT: "read_uvarint",
    VARINT: "read_varint",
    VARLONG: "read_varlong",
}
_SIMPLE_WRITERS = {
    UUID: "write_uuid",
    UVARINT: "write_uvarint",
    VARINT: "write_varint",
    VARLONG: "write_varlong",
}


class _Compiler:
    """Generates one decode and one encode function for a (class, version).

    Nested structs (array elements and struct fields) are inlined into the same function,
    with per-depth variable names, so decoding a Produce request or encoding a Fetch
    response makes no Python call per partition other than the element constructor.
    """

    def __init__(self, cls: type[Struct], version: int, flexible: bool) -> None:
        self.cls = cls
        self.version = version
        self.flexible = flexible
        self.ns: dict[str, Any] = {
            name: getattr(p, name) for name in dir(p) if name.startswith(("read_", "write_"))
        }
        self.ns.update(
            DecodeError=p.DecodeError,
            unpack_from=struct.unpack_from,
            unpack_i32=struct.Struct(">i").unpack_from,
            pack_i32=struct.Struct(">i").pack,
            struct_pack=struct.pack,
            uvarint_bytes=p.uvarint_bytes,
            memoryview=memoryview,
        )
        self.counter = 0

    def name(self, prefix: str, value: Any) -> str:
        self.counter += 1
        name = f"{prefix}{self.counter}"
        self.ns[name] = value
        return name

    def present(self, cls: type[Struct]) -> tuple[list[FieldSpec], list[FieldSpec]]:
        """(fields in the body, tagged fields by tag) of ``cls`` at this version."""
        fields = [s for s in cls.FIELDS if self.version in s.versions]
        body = [s for s in fields if not (self.flexible and s.tag is not None)]
        tagged = sorted((s for s in fields if self.flexible and s.tag is not None), key=_tag)
        return body, tagged

    def build(self) -> tuple[Decoder, Encoder]:
        source = "\n".join(
            [
                "def decode(buf, pos):",
                "    mv = memoryview(buf)",
                "    blen = len(buf)",
                *self.decode_struct(self.cls, "o0", "    ", 0),
                "    return o0, pos",
                "def encode(o0, out, chunks):",
                *self.encode_struct(self.cls, "o0", "out", "chunks", "    ", 0),
                "    return None",
            ]
        )
        exec(compile(source, f"<codec {self.cls.__qualname__} v{self.version}>", "exec"), self.ns)
        return self.ns["decode"], self.ns["encode"]

    # -- decoding ----------------------------------------------------------------------

    def decode_struct(self, cls: type[Struct], var: str, ind: str, depth: int) -> list[str]:
        body, tagged = self.present(cls)
        lines: list[str] = []
        run: list[FieldSpec] = []
        for spec in [*body, None]:
            if spec is not None and spec.kind.fmt is not None:
                run.append(spec)
                continue
            if run:
                fmt = struct.Struct(">" + "".join(s.kind.fmt or "" for s in run))
                names = ", ".join(f"v{depth}_{s.name}" for s in run)
                unpack = self.name("s", fmt.unpack_from)
                lines += [f"{ind}({names},) = {unpack}(buf, pos)", f"{ind}pos += {fmt.size}"]
                run = []
            if spec is not None:
                lines += self.decode_field(spec, f"v{depth}_{spec.name}", ind, depth)
        args = ", ".join(f"{s.name}=v{depth}_{s.name}" for s in body)
        lines.append(f"{ind}{var} = {self.name('C', cls)}({args})")
        if tagged:
            known = self.name("tags", {s.tag: (s.name, self.field_reader(s)) for s in tagged})
            lines += [
                f"{ind}if buf[pos]:",
                f"{ind}    t, pos = read_tags(buf, pos, {known})",
                f"{ind}    for k, v in t.items():",
                f"{ind}        setattr({var}, k, v)",
                f"{ind}else:",
                f"{ind}    pos += 1",
            ]
        elif self.flexible:
            # Almost always an empty section (one zero byte): skip it without a call.
            lines += [
                f"{ind}if buf[pos]:",
                f"{ind}    t, pos = read_tags(buf, pos, {{}})",
                f"{ind}else:",
                f"{ind}    pos += 1",
            ]
        return lines

    def field_reader(self, spec: FieldSpec) -> Decoder:
        """A standalone reader of one field (used for tagged fields)."""
        ns: dict[str, Any] = {}
        lines = [
            "def read(buf, pos):",
            "    mv = memoryview(buf)",
            "    blen = len(buf)",
            *self.decode_field(spec, "v", "    ", 1),
            "    return v, pos",
        ]
        exec("\n".join(lines), self.ns, ns)
        reader: Decoder = ns["read"]
        return reader

    def decode_field(self, spec: FieldSpec, var: str, ind: str, depth: int) -> list[str]:
        kind = spec.kind
        nullable = self.version in spec.nullable
        if kind.fmt is not None:
            fmt = self.name("s", struct.Struct(">" + kind.fmt).unpack_from)
            size = struct.calcsize(kind.fmt)
            return [f"{ind}({var},) = {fmt}(buf, pos)", f"{ind}pos += {size}"]
        if kind in _SIMPLE_READERS:
            return [f"{ind}{var}, pos = {_SIMPLE_READERS[kind]}(buf, pos)"]
        if kind is STRUCT:
            if nullable:  # an int8 marker: -1 null, 1 present
                inner = self.decode_struct(spec.element_class(), var, ind + "    ", depth + 1)
                return [
                    f"{ind}marker = buf[pos]",
                    f"{ind}pos += 1",
                    f"{ind}if marker == 0xFF:",
                    f"{ind}    {var} = None",
                    f"{ind}elif marker != 1:",
                    f"{ind}    raise DecodeError('bad null marker of struct {spec.name}')",
                    f"{ind}else:",
                    *inner,
                ]
            return self.decode_struct(spec.element_class(), var, ind, depth + 1)
        if isinstance(kind, Array):
            return self.decode_array(spec, kind, var, ind, nullable, depth)
        if kind is RECORDS:
            # The hot path of Produce: a view into the frame, checked against its end.
            if self.flexible:
                length = [f"{ind}n, pos = read_uvarint(buf, pos)", f"{ind}n -= 1"]
            else:
                length = [f"{ind}(n,) = unpack_i32(buf, pos)", f"{ind}pos += 4"]
            return [
                *length,
                f"{ind}if n < 0:",
                f"{ind}    if n != -1:",
                f"{ind}        raise DecodeError('negative records length')",
                f"{ind}    {var} = None",
                f"{ind}else:",
                f"{ind}    end = pos + n",
                f"{ind}    if end > blen:",
                f"{ind}        raise DecodeError('records length exceeds the frame')",
                f"{ind}    {var} = mv[pos:end]",
                f"{ind}    pos = end",
            ]
        return [f"{ind}{var}, pos = {_READERS[kind, self.flexible, nullable]}(buf, pos)"]

    def decode_array(
        self, spec: FieldSpec, kind: Array, var: str, ind: str, nullable: bool, depth: int
    ) -> list[str]:
        element = kind.element
        if element is None:
            size = min_size(spec.element_class(), self.version, self.flexible)
        else:
            size = element.min_size if element.fmt is None else struct.calcsize(element.fmt)
        count = "read_compact_count" if self.flexible else "read_count"
        n, e = f"n{depth}", f"e{depth}"
        null = f"{var} = None" if nullable else f"raise DecodeError('null array {spec.name}')"
        lines = [
            f"{ind}{n}, pos = {count}(buf, pos, {size})",
            f"{ind}if {n} < 0:",
            f"{ind}    {null}",
            f"{ind}else:",
        ]
        if element is not None and element.fmt is not None:
            return [
                *lines,
                f"{ind}    {var} = list(unpack_from('>%d{element.fmt}' % {n}, buf, pos))",
                f"{ind}    pos += {n} * {size}",
            ]
        if element is None:
            read_one = self.decode_struct(spec.element_class(), e, ind + "        ", depth + 1)
        else:
            inner = FieldSpec(element, "0+", "none", None, None, None)
            read_one = self.decode_field(inner, e, ind + "        ", depth + 1)
        return [
            *lines,
            f"{ind}    {var} = []",
            f"{ind}    for _ in range({n}):",
            *read_one,
            f"{ind}        {var}.append({e})",
        ]

    # -- encoding ----------------------------------------------------------------------

    def encode_struct(
        self, cls: type[Struct], obj: str, out: str, chunks: str, ind: str, depth: int
    ) -> list[str]:
        body, tagged = self.present(cls)
        lines: list[str] = []
        run: list[FieldSpec] = []
        for spec in [*body, None]:
            if spec is not None and spec.kind.fmt is not None:
                run.append(spec)
                continue
            if run:
                fmt = struct.Struct(">" + "".join(s.kind.fmt or "" for s in run))
                values = ", ".join(f"{obj}.{s.name}" for s in run)
                lines.append(f"{ind}{out} += {self.name('s', fmt.pack)}({values})")
                run = []
            if spec is not None:
                lines += self.encode_field(spec, f"{obj}.{spec.name}", out, chunks, ind, depth)
        if tagged:
            t, b = f"t{depth}", f"b{depth}"
            lines.append(f"{ind}{t} = None")
            for spec in tagged:
                lines += [
                    f"{ind}if {self.differs_from_default(spec, f'{obj}.{spec.name}')}:",
                    f"{ind}    if {t} is None:",
                    f"{ind}        {t} = []",
                    f"{ind}    {b} = bytearray()",
                    *self.encode_field(spec, f"{obj}.{spec.name}", b, "None", ind + "    ", depth),
                    f"{ind}    {t}.append(({spec.tag}, {b}))",
                ]
            lines.append(f"{ind}write_tags({out}, {t})")
        elif self.flexible:
            lines.append(f"{ind}{out} += b'\\x00'")
        return lines

    def differs_from_default(self, spec: FieldSpec, expr: str) -> str:
        """A condition true when a tagged field must be written (it is not its default).

        A struct-valued tag is compared field by field: dataclass ``!=`` builds tuples and
        would dominate the cost of a Fetch response, which has three such tags per partition.
        """
        if spec.kind is STRUCT:
            inner = [s for s in spec.element_class().FIELDS if self.version in s.versions]
            if all(s.kind.fmt is not None or s.kind in (STRING, UUID) for s in inner):
                tests = [f"{expr}.{s.name} != {self.name('d', s.make_default())}" for s in inner]
                return " or ".join(tests) or "False"
        return f"{expr} != {self.name('default', spec.make_default())}"

    def encode_field(
        self, spec: FieldSpec, expr: str, out: str, chunks: str, ind: str, depth: int
    ) -> list[str]:
        kind = spec.kind
        nullable = self.version in spec.nullable
        if kind.fmt is not None:
            pack = self.name("s", struct.Struct(">" + kind.fmt).pack)
            return [f"{ind}{out} += {pack}({expr})"]
        if kind in _SIMPLE_WRITERS:
            return [f"{ind}{_SIMPLE_WRITERS[kind]}({out}, {expr})"]
        if kind is RECORDS:
            writer = "write_compact_records" if self.flexible else "write_records"
            return [f"{ind}{writer}({out}, {chunks}, {expr})"]
        if kind is STRUCT:
            obj = f"o{depth + 1}"
            if nullable:
                inner = self.encode_struct(
                    spec.element_class(), obj, out, chunks, ind + "    ", depth + 1
                )
                return [
                    f"{ind}{obj} = {expr}",
                    f"{ind}if {obj} is None:",
                    f"{ind}    {out} += b'\\xff'",
                    f"{ind}else:",
                    f"{ind}    {out} += b'\\x01'",
                    *inner,
                ]
            return [
                f"{ind}{obj} = {expr}",
                *self.encode_struct(spec.element_class(), obj, out, chunks, ind, depth + 1),
            ]
        if isinstance(kind, Array):
            return self.encode_array(spec, kind, expr, out, chunks, ind, nullable, depth)
        return [f"{ind}{_WRITERS[kind, self.flexible, nullable]}({out}, {expr})"]

    def encode_array(
        self,
        spec: FieldSpec,
        kind: Array,
        expr: str,
        out: str,
        chunks: str,
        ind: str,
        nullable: bool,
        depth: int,
    ) -> list[str]:
        if self.flexible:
            null, count = "b'\\x00'", "uvarint_bytes(len({a}) + 1)"
        else:
            null, count = "b'\\xff\\xff\\xff\\xff'", "pack_i32(len({a}))"
        a, x = f"a{depth}", f"o{depth + 1}"
        lines = [f"{ind}{a} = {expr}", f"{ind}if {a} is None:"]
        if nullable:
            lines.append(f"{ind}    {out} += {null}")
        else:
            lines.append(f"{ind}    raise DecodeError('array {spec.name} must not be None')")
        lines += [f"{ind}else:", f"{ind}    {out} += {count.format(a=a)}"]
        element = kind.element
        if element is not None and element.fmt is not None:
            return [*lines, f"{ind}    {out} += struct_pack('>%d{element.fmt}' % len({a}), *{a})"]
        if element is None:
            write_one = self.encode_struct(
                spec.element_class(), x, out, chunks, ind + "        ", depth + 1
            )
        else:
            inner = FieldSpec(element, "0+", "none", None, None, None)
            write_one = self.encode_field(inner, x, out, chunks, ind + "        ", depth + 1)
        return [*lines, f"{ind}    for {x} in {a}:", *write_one]


def _tag(spec: FieldSpec) -> int:
    return spec.tag if spec.tag is not None else -1
