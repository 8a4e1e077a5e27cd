"""The C-style preprocessor P4 programs rely on, producing text plus a line map.

Supported: `#include "file"` (relative to the including file, then the include path, then
p4sim's own `p4include/` as cpp falls back to the system path),
`#include <core.p4>` / `<v1model.p4>` (p4sim's own declarations in `p4sim/p4include/`),
object-like and function-like `#define`, `#undef`, `#ifdef`, `#ifndef`, `#if`/`#elif` over
`defined(X)`, integers and `&& || ! == != < > <= >=`, `#else`, `#endif`, `#error`.
Comments are blanked here (newlines kept) so macro expansion never sees them. Every output line
maps back to its (file, line) so later errors point into the right file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from p4sim.errors import PreprocessorError

SYSTEM_INCLUDE_DIR = Path(__file__).parent / "p4include"
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DIRECTIVE = re.compile(r"^\s*#\s*([a-z]+)\b(.*)$")
_MAX_INCLUDE_DEPTH = 32


@dataclass(frozen=True, kw_only=True)
class Macro:
    """A `#define`: `params` is None for an object-like macro."""

    name: str
    params: tuple[str, ...] | None
    body: str


@dataclass(frozen=True, kw_only=True)
class Preprocessed:
    """The expanded text and, for output line i (1-based), `origins[i - 1] = (file, line)`."""

    text: str
    origins: tuple[tuple[str, int], ...]
    files: tuple[str, ...]

    def origin(self, line: int) -> tuple[str, int]:
        """Map an output line (1-based) back to (file, line)."""
        if 1 <= line <= len(self.origins):
            return self.origins[line - 1]
        return self.origins[-1] if self.origins else ("<empty>", 1)


def strip_comments(text: str) -> str:
    """Blank `//` and `/* */` comments, keeping newlines and string literals."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"' and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i = j + 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            chunk = text[i : (n if j < 0 else j + 2)]
            out.append(re.sub(r"[^\n]", " ", chunk))
            i = n if j < 0 else j + 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


class Preprocessor:
    """One run over a top-level file (create a new one per load)."""

    def __init__(
        self, *, defines: Mapping[str, str] | None = None, include_dirs: tuple[Path, ...] = ()
    ) -> None:
        self.macros: dict[str, Macro] = {
            name: Macro(name=name, params=None, body=str(value))
            for name, value in (defines or {}).items()
        }
        self.include_dirs = include_dirs
        self.lines: list[str] = []
        self.origins: list[tuple[str, int]] = []
        self.files: list[str] = []

    def run(self, path: Path) -> Preprocessed:
        """Preprocess `path` and everything it includes."""
        self._file(path.resolve(), display=str(path), depth=0)
        return Preprocessed(
            text="\n".join(self.lines) + "\n", origins=tuple(self.origins), files=tuple(self.files)
        )

    def _error(self, message: str, file: str, line: int) -> PreprocessorError:
        return PreprocessorError(message, file=file, line=line, column=1, construct="preprocessor")

    def _file(self, path: Path, *, display: str, depth: int) -> None:
        if depth > _MAX_INCLUDE_DEPTH:
            raise self._error("#include nested too deeply (include cycle?)", display, 1)
        self.files.append(display)
        raw = strip_comments(path.read_text(encoding="utf-8")).split("\n")
        # (active, taken, seen_else, line) per open conditional
        stack: list[list[object]] = []
        i = 0
        while i < len(raw):
            lineno = i + 1
            line = raw[i]
            consumed = 1
            while line.endswith("\\") and i + consumed < len(raw):
                line = line[:-1] + " " + raw[i + consumed]
                consumed += 1
            active = all(bool(frame[0]) for frame in stack)
            m = _DIRECTIVE.match(line)
            if m:
                self._directive(m.group(1), m.group(2).strip(), stack, active, path, display,
                                lineno, depth)
                for k in range(consumed):
                    self.lines.append("")
                    self.origins.append((display, lineno + k))
            else:
                text = self._expand(line, display, lineno) if active else ""
                self.lines.append(text)
                self.origins.append((display, lineno))
                for k in range(1, consumed):
                    self.lines.append("")
                    self.origins.append((display, lineno + k))
            i += consumed
        if stack:
            raise self._error("#if/#ifdef without #endif", display, int(stack[-1][3]))  # type: ignore[call-overload]

    def _directive(
        self,
        name: str,
        rest: str,
        stack: list[list[object]],
        active: bool,
        path: Path,
        display: str,
        lineno: int,
        depth: int,
    ) -> None:
        if name in ("ifdef", "ifndef"):
            m = _IDENT.fullmatch(rest)
            if not m:
                raise self._error(f"#{name} needs one macro name, got {rest!r}", display, lineno)
            cond = (rest in self.macros) == (name == "ifdef")
            stack.append([cond, cond, False, lineno])
            return
        if name == "if":
            cond = active and self._eval(rest, display, lineno)
            stack.append([cond, cond, False, lineno])
            return
        if name in ("elif", "else", "endif"):
            if not stack:
                raise self._error(f"#{name} without #if", display, lineno)
            frame = stack[-1]
            if name == "endif":
                stack.pop()
                return
            if frame[2]:
                raise self._error(f"#{name} after #else", display, lineno)
            outer = all(bool(f[0]) for f in stack[:-1])
            if name == "else":
                frame[2] = True
                frame[0] = not frame[1]
            else:
                cond = not frame[1] and outer and self._eval(rest, display, lineno)
                frame[0] = cond
                frame[1] = bool(frame[1]) or cond
            return
        if not active:
            return
        if name == "define":
            m = re.match(r"([A-Za-z_][A-Za-z0-9_]*)(\(([^)]*)\))?\s*(.*)$", rest)
            if not m:
                raise self._error(f"#define needs a macro name, got {rest!r}", display, lineno)
            params = None
            if m.group(2) is not None:
                params = tuple(p.strip() for p in m.group(3).split(",") if p.strip())
            self.macros[m.group(1)] = Macro(name=m.group(1), params=params, body=m.group(4).strip())
        elif name == "undef":
            self.macros.pop(rest.strip(), None)
        elif name == "include":
            self._include(rest, path, display, lineno, depth)
        elif name == "error":
            raise self._error(f"#error {rest}", display, lineno)
        elif name in ("pragma", "line"):
            return
        else:
            raise self._error(f"unknown directive #{name}", display, lineno)

    def _include(self, rest: str, path: Path, display: str, lineno: int, depth: int) -> None:
        m = re.fullmatch(r'"([^"]+)"|<([^>]+)>', rest.strip())
        if not m:
            raise self._error(f'#include needs "file" or <file>, got {rest!r}', display, lineno)
        if m.group(2) is not None:
            target = SYSTEM_INCLUDE_DIR / m.group(2)
            if not target.is_file():
                raise self._error(
                    f"<{m.group(2)}>: p4sim provides only <core.p4> and <v1model.p4>",
                    display, lineno,
                )
            self._file(target, display=f"<{m.group(2)}>", depth=depth + 1)
            return
        name = m.group(1)
        for base in (path.parent, *self.include_dirs):
            target = base / name
            if target.is_file():
                shown = str(Path(display).parent / name) if display else name
                self._file(target.resolve(), display=shown, depth=depth + 1)
                return
        if (SYSTEM_INCLUDE_DIR / name).is_file():  # like cpp: "x" falls back to the <x> path
            self._file(SYSTEM_INCLUDE_DIR / name, display=f"<{name}>", depth=depth + 1)
            return
        raise self._error(f'#include "{name}": file not found', display, lineno)

    def _eval(self, expr: str, display: str, lineno: int) -> bool:
        expr = re.sub(
            r"defined\s*\(\s*([A-Za-z_]\w*)\s*\)|defined\s+([A-Za-z_]\w*)",
            lambda m: "1" if (m.group(1) or m.group(2)) in self.macros else "0",
            expr,
        )
        expr = self._expand(expr, display, lineno)
        expr = _IDENT.sub("0", expr)
        expr = expr.replace("&&", " and ").replace("||", " or ")
        expr = re.sub(r"!(?!=)", " not ", expr)
        if not re.fullmatch(r"[0-9xXa-fA-F\s()<>=!+\-*/%andortx]*", expr):
            raise self._error(f"#if: cannot evaluate {expr!r}", display, lineno)
        try:
            return bool(eval(expr, {"__builtins__": {}}, {}))  # noqa: S307 - filtered above
        except Exception as exc:
            raise self._error(f"#if: cannot evaluate {expr!r}", display, lineno) from exc

    def _expand(self, text: str, display: str, lineno: int, active: frozenset[str] = frozenset()
                ) -> str:
        if not self.macros:
            return text
        out: list[str] = []
        i, n = 0, len(text)
        while i < n:
            c = text[i]
            if c == '"':
                j = i + 1
                while j < n and text[j] != '"':
                    j += 2 if text[j] == "\\" else 1
                out.append(text[i : j + 1])
                i = j + 1
                continue
            m = _IDENT.match(text, i)
            if not m or (i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_")):
                out.append(c)
                i += 1
                continue
            word = m.group(0)
            i = m.end()
            macro = self.macros.get(word)
            if macro is None or word in active:
                out.append(word)
                continue
            if macro.params is None:
                out.append(self._expand(macro.body, display, lineno, active | {word}))
                continue
            j = i
            while j < n and text[j] in " \t":
                j += 1
            if j >= n or text[j] != "(":
                out.append(word)
                continue
            args, i = self._split_args(text, j, display, lineno)
            if len(args) != len(macro.params) and not (not macro.params and args == [""]):
                raise self._error(
                    f"macro {word} takes {len(macro.params)} arguments, got {len(args)}",
                    display, lineno,
                )
            values = {p: self._expand(a.strip(), display, lineno, active)
                      for p, a in zip(macro.params, args, strict=False)}
            body = _substitute(macro.body, values)
            out.append(self._expand(body, display, lineno, active | {word}))
        return "".join(out)

    def _split_args(self, text: str, start: int, display: str, lineno: int
                    ) -> tuple[list[str], int]:
        depth = 0
        args: list[str] = []
        cur: list[str] = []
        i = start
        while i < len(text):
            c = text[i]
            if c == "(":
                depth += 1
                if depth == 1:
                    i += 1
                    continue
            elif c == ")":
                depth -= 1
                if depth == 0:
                    args.append("".join(cur))
                    return args, i + 1
            elif c == "," and depth == 1:
                args.append("".join(cur))
                cur = []
                i += 1
                continue
            cur.append(c)
            i += 1
        raise self._error("unterminated macro arguments", display, lineno)


def _substitute(body: str, values: dict[str, str]) -> str:
    """Replace macro parameters in a body by their argument texts."""
    return _IDENT.sub(lambda m: values.get(m.group(0), m.group(0)), body)


def preprocess(
    path: Path, *, defines: Mapping[str, str] | None = None, include_dirs: tuple[Path, ...] = ()
) -> Preprocessed:
    """Preprocess the P4 file at `path`."""
    return Preprocessor(defines=defines, include_dirs=include_dirs).run(path)
