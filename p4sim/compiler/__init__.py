"""The front end's last step: check a parsed program and compile it into Python source.

The compiler resolves every name, checks widths and argument counts, and generates one Python
function per parser state, action, table and control. The generated module is compiled with
`compile()` once per program; `CompiledProgram.instantiate` runs it against one device's
`RuntimeState`, so a packet runs straight-line Python with no tree walking.

Everything is checked before its code is generated: the checker (`checker`) walks each
expression once, resolves its names, computes every node's type and constant value, reports
type errors at file:line:column and records the result per node; the code generator
(`expressions`) reads it. Every other rule (declarations, statements, call arguments, extern
uses, tables, parsers, controls) is a `check_*` function of `checker_rules` that the module
laying the construct out calls first, so those modules only lay out code. The output is read with
`p4sim check --dump`. `Compiler` is assembled from parts, one module per job:

- `driver`: the `Compiler` class, its state, error locations, `V1Switch` and the order of work;
- `declarations`: the program's types, constants, externs and annotations, before any code;
- `constfold`: literals, widths and compile-time constants;
- `checker`: the type of every expression, and the type errors (a typed tree as a side table);
- `checker_rules`: every other rule a program must follow, one `check_*` function each;
- `classes`: the generated header/struct classes and their extract/emit functions;
- `parsers`, `controls`, `tables`: the program's blocks;
- `statements`, `expressions`: the code inside them, from the checker's types;
- `calls`: function and action calls and P4_16's copy-in/copy-out calling convention;
- `externs`: the extern library (counters, meters, registers, hashes, checksums, packet I/O);
- `symbols` (what names and compiled expressions mean: `Sym`, `Val`, `Scope`) and `pysource`
  (`Gen`, the generated text).

Conventions in the generated code: `P` is the `Packet`; struct and header fields are attributes
`f_<name>`, `_v` is a header's validity bit; tables, counters and registers are globals bound at
instantiation (`_T_*`, `_C_*`, `_R_*`), action ids are globals `_A_*`.
"""

from p4sim.compiler.driver import Compiler, compile_program

__all__ = ["Compiler", "compile_program"]
