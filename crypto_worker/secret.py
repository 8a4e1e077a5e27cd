"""A wrapper for key material that never shows its bytes in reprs, logs or errors."""

from __future__ import annotations

from typing import NoReturn


class Secret:
    """Holds secret bytes; only the crypto code calls `reveal()`.

    The repr is `<secret len=N>`, so a Secret that ends up in a log line, an exception message or
    a dataclass repr discloses only its length. Pickling is refused so it cannot leave the process
    by accident.
    """

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        if not isinstance(value, bytes | bytearray | memoryview):
            raise TypeError(f"Secret takes bytes, not {type(value).__name__}")
        self._value = bytes(value)

    def reveal(self) -> bytes:
        """Returns the secret bytes; for the AEAD set-up only."""
        return self._value

    def __len__(self) -> int:
        return len(self._value)

    def __repr__(self) -> str:
        return f"<secret len={len(self._value)}>"

    __str__ = __repr__

    def __format__(self, format_spec: str) -> str:
        return repr(self)

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Secret cannot be pickled")
