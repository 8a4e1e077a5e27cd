"""The readable form of API messages: plain dicts with dotted IPs, colon MACs, hex and enum names.

Field names are the proto's (``match_criteria``, ``ipsecTunnel``; the JSON spelling
``matchCriteria`` is accepted too), so docs/api.md describes both. Conversion walks the message
descriptor, so every field the proto gains is handled without code here; only fields whose
*values* need a readable form are listed in ``_VALUE_CODECS``.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from tunnelctl import wire_values

__all__ = ["InputError", "from_readable", "to_readable"]

_PACKAGE = "tunneloffload.v1alpha1"
_MAX_UINT32 = 0xFFFFFFFF
_MAX_UINT64 = 0xFFFFFFFFFFFFFFFF


class InputError(ValueError):
    """A readable document that does not describe a valid message; ``path`` names the field."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True, kw_only=True)
class _ValueCodec:
    encode: Callable[[Any], Any]
    decode: Callable[[Any], Any]


_IPV4 = _ValueCodec(encode=wire_values.encode_ipv4, decode=wire_values.decode_ipv4)
_IPV6 = _ValueCodec(encode=wire_values.encode_ipv6, decode=wire_values.decode_ipv6)
_MAC = _ValueCodec(encode=wire_values.encode_mac, decode=wire_values.decode_mac)
_KEY = _ValueCodec(encode=wire_values.encode_key, decode=wire_values.redact_key)
_HEX = _ValueCodec(encode=wire_values.encode_hex, decode=wire_values.decode_hex)

_VALUE_CODECS: dict[tuple[str, str], _ValueCodec] = {
    (f"{_PACKAGE}.IPV4Pair", "sourceIp"): _IPV4,
    (f"{_PACKAGE}.IPV4Pair", "destinationIp"): _IPV4,
    (f"{_PACKAGE}.IPV4Match", "sourceIp"): _IPV4,
    (f"{_PACKAGE}.IPV4Match", "destinationIp"): _IPV4,
    (f"{_PACKAGE}.NAT", "sourceIp"): _IPV4,
    (f"{_PACKAGE}.IPV6Pair", "sourceIp"): _IPV6,
    (f"{_PACKAGE}.IPV6Pair", "destinationIp"): _IPV6,
    (f"{_PACKAGE}.IPV6Match", "sourceIp"): _IPV6,
    (f"{_PACKAGE}.IPV6Match", "destinationIp"): _IPV6,
    (f"{_PACKAGE}.MacPair", "sourceMac"): _MAC,
    (f"{_PACKAGE}.MacPair", "destinationMac"): _MAC,
    (f"{_PACKAGE}.IPSecSAParams", "encryptionKey"): _KEY,
    (f"{_PACKAGE}.GENEVEOption", "data"): _HEX,
}

# Messages whose zero values are information (a counter at 0), so every field is always shown.
_SHOW_ZEROS = {f"{_PACKAGE}.counters"}

# IP match messages take ``address/prefix`` in one value; the prefix field is filled from it.
_PREFIXED = {
    f"{_PACKAGE}.IPV4Match": 32,
    f"{_PACKAGE}.IPV6Match": 128,
}


def from_readable(data: Any, message: Message, path: str) -> Message:
    """Fill ``message`` from its readable form; raise :class:`InputError` naming the bad field."""
    if data is None:
        message.SetInParent()
        return message
    if not isinstance(data, Mapping):
        raise InputError(path, f"expected a mapping of {message.DESCRIPTOR.name} fields, got "
                               f"{_describe(data)}")
    descriptor = message.DESCRIPTOR
    message.SetInParent()
    data = _split_prefixes(data, descriptor, path)
    seen_oneofs: dict[str, str] = {}
    for key, value in data.items():
        field = _field(descriptor, key, path)
        field_path = f"{path}.{field.name}" if path else field.name
        oneof = field.containing_oneof
        if oneof is not None:
            if oneof.name in seen_oneofs:
                raise InputError(field_path, f"only one of {_oneof_names(oneof)} may be given "
                                             f"(also got {seen_oneofs[oneof.name]})")
            seen_oneofs[oneof.name] = field.name
        _set_field(message, field, value, field_path)
    return message


def to_readable(message: Message) -> dict[str, Any]:
    """The readable form of ``message``: set fields only, keys redacted, enums by name.

    Enum fields are shown even at zero, because zero is meaningful for most of this API's enums
    (``TRANSPORT``, ``_aes256gcm64``); only the "nothing" values ``NONE``/``_NONE`` are left out.
    """
    descriptor = message.DESCRIPTOR
    out: dict[str, Any] = {}
    for field in descriptor.fields:
        if field.type == FieldDescriptor.TYPE_ENUM and not _is_repeated(field):
            value = getattr(message, field.name)
            name = field.enum_type.values_by_number[value].name if (
                value in field.enum_type.values_by_number) else value
            if name not in ("NONE", "_NONE"):
                out[field.name] = name
            continue
        if _is_repeated(field):
            items = getattr(message, field.name)
            if items:
                out[field.name] = [_readable_value(message, field, item) for item in items]
            continue
        if field.message_type is not None or field.containing_oneof is not None:
            if message.HasField(field.name):
                out[field.name] = _readable_value(message, field, getattr(message, field.name))
            continue
        value = getattr(message, field.name)
        if value or descriptor.full_name in _SHOW_ZEROS:
            out[field.name] = _readable_value(message, field, value)
    _join_prefixes(out, descriptor)
    return out


def _readable_value(message: Message, field: FieldDescriptor, value: Any) -> Any:
    if field.message_type is not None:
        return to_readable(value)
    if field.type == FieldDescriptor.TYPE_ENUM:
        known = field.enum_type.values_by_number.get(value)
        return known.name if known is not None else value
    value_codec = _VALUE_CODECS.get((message.DESCRIPTOR.full_name, field.name))
    if value_codec is not None:
        try:
            return value_codec.decode(value)
        except wire_values.CodecError:
            return wire_values.decode_hex(value) if isinstance(value, bytes) else value
    if isinstance(value, bytes):
        return wire_values.decode_hex(value)
    return value


def _set_field(message: Message, field: FieldDescriptor, value: Any, path: str) -> None:
    if _is_repeated(field):
        if not isinstance(value, list):
            raise InputError(path, f"expected a list, got {_describe(value)}")
        container = getattr(message, field.name)
        for index, item in enumerate(value):
            item_path = f"{path}[{index}]"
            if field.message_type is not None:
                from_readable(item, container.add(), item_path)
            else:
                container.append(_scalar(message, field, item, item_path))
        return
    if field.message_type is not None:
        from_readable(value, getattr(message, field.name), path)
        return
    setattr(message, field.name, _scalar(message, field, value, path))


def _scalar(message: Message, field: FieldDescriptor, value: Any, path: str) -> Any:
    value_codec = _VALUE_CODECS.get((message.DESCRIPTOR.full_name, field.name))
    if value_codec is not None:
        try:
            return value_codec.encode(value)
        except wire_values.CodecError as error:
            raise InputError(path, str(error)) from None
    if field.type == FieldDescriptor.TYPE_ENUM:
        return _enum(field, value, path)
    if field.type == FieldDescriptor.TYPE_BOOL:
        if not isinstance(value, bool):
            raise InputError(path, f"expected true or false, got {_describe(value)}")
        return value
    if field.type == FieldDescriptor.TYPE_STRING:
        if not isinstance(value, str):
            raise InputError(path, f"expected text, got {_describe(value)}")
        return value
    if field.type == FieldDescriptor.TYPE_BYTES:
        try:
            return wire_values.encode_hex(value)
        except wire_values.CodecError as error:
            raise InputError(path, str(error)) from None
    return _unsigned(field, value, path)


def _unsigned(field: FieldDescriptor, value: Any, path: str) -> int:
    if isinstance(value, str):
        try:
            value = int(value, 0)
        except ValueError:
            raise InputError(path, f"expected an integer, got {wire_values.shown(value)}") from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(path, f"expected an integer, got {_describe(value)}")
    limit = _MAX_UINT64 if field.type in (FieldDescriptor.TYPE_UINT64,
                                          FieldDescriptor.TYPE_FIXED64) else _MAX_UINT32
    if not 0 <= value <= limit:
        raise InputError(path, f"{value} is out of range 0..{limit}")
    return value


def _enum(field: FieldDescriptor, value: Any, path: str) -> int:
    enum = field.enum_type
    names = [item.name for item in enum.values]
    if isinstance(value, str):
        if value in enum.values_by_name:
            return int(enum.values_by_name[value].number)
        folded = {name.lower(): name for name in names}
        if value.lower() in folded:
            return int(enum.values_by_name[folded[value.lower()]].number)
        shown = wire_values.shown(value)
        raise InputError(path, f"unknown {enum.name} {shown}{_suggest(value, names)}; "
                               f"one of {', '.join(names)}")
    if isinstance(value, int) and not isinstance(value, bool) and value in enum.values_by_number:
        return value
    raise InputError(path, f"expected a {enum.name} name ({', '.join(names)}), got "
                           f"{_describe(value)}")


def _field(descriptor: Descriptor, key: Any, path: str) -> FieldDescriptor:
    if isinstance(key, str):
        field = descriptor.fields_by_name.get(key)
        if field is not None:
            return field
        for candidate in descriptor.fields:
            if candidate.json_name == key:
                return candidate
    names = [field.name for field in descriptor.fields]
    where = f"{path}.{key}" if path else str(key)
    raise InputError(where, f"unknown field of {descriptor.name}{_suggest(str(key), names)}; "
                            f"fields are {', '.join(names)}")


def _split_prefixes(data: Mapping[str, Any], descriptor: Descriptor,
                    path: str) -> Mapping[str, Any]:
    """``sourceIp: 11.0.0.1/24`` -> address plus ``sourceIpPrefix: 24``; a bare address gets /32."""
    full_length = _PREFIXED.get(descriptor.full_name)
    if full_length is None:
        return data
    result = dict(data)
    for address_key in ("sourceIp", "destinationIp"):
        if address_key not in result:
            continue
        prefix_key = f"{address_key}Prefix"
        address = result[address_key]
        if not isinstance(address, str):
            continue
        text, slash, prefix_text = address.partition("/")
        if slash:
            if not prefix_text.isdigit() or int(prefix_text) > full_length:
                raise InputError(f"{path}.{address_key}",
                                 f"prefix length {prefix_text!r} is not 0..{full_length}")
            prefix = int(prefix_text)
            given = result.get(prefix_key)
            if given is not None and given != prefix:
                raise InputError(f"{path}.{prefix_key}",
                                 f"{given} contradicts the /{prefix} in {address_key}")
            result[address_key] = text
            result[prefix_key] = prefix
        elif prefix_key not in result:
            result[prefix_key] = full_length
    return result


def _join_prefixes(out: dict[str, Any], descriptor: Descriptor) -> None:
    if descriptor.full_name not in _PREFIXED:
        return
    for address_key in ("sourceIp", "destinationIp"):
        prefix_key = f"{address_key}Prefix"
        if address_key in out:
            out[address_key] = f"{out[address_key]}/{out.pop(prefix_key, 0)}"


def _is_repeated(field: FieldDescriptor) -> bool:
    return bool(field.is_repeated)


def _oneof_names(oneof: Any) -> str:
    return ", ".join(field.name for field in oneof.fields)


def _suggest(word: str, names: list[str]) -> str:
    close = difflib.get_close_matches(word, names, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _describe(value: Any) -> str:
    if isinstance(value, (Mapping, list)):
        return f"a {type(value).__name__}"
    if isinstance(value, str | bytes) and len(value) > wire_values.MAX_SHOWN:
        return wire_values.shown(value)
    return f"{type(value).__name__} {value!r}"
