"""Build hook: the wheel carries what ``make`` would otherwise generate or leave in the checkout.

* ``tunneloffload/``: the gRPC/protobuf stubs of every ``.proto`` under ``proto/``, generated at
  build time by the grpcio-tools pinned in ``[build-system] requires`` (the same version as the
  runtime pin, so a wheel and ``make proto`` produce the same stubs).
* ``controller/p4src/``: the P4 program and its checked-in P4Info, found by
  ``controller.settings.p4src_dir()`` so the controller's defaults work outside the checkout.

Editable installs (``make``) are left alone: there the stubs are generated into the tree by
``make proto`` and ``p4src/`` is read from the checkout.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class BuildWithGenerated(build_py):
    """``build_py`` plus the generated stubs and the P4 sources, written into ``build_lib``."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        out = Path(self.build_lib)
        self._generate_stubs(out)
        target = out / "controller" / "p4src"
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(ROOT / "p4src", target)

    @staticmethod
    def _generate_stubs(out: Path) -> None:
        from grpc_tools import protoc  # a build requirement (pyproject.toml [build-system])

        shutil.rmtree(out / "tunneloffload", ignore_errors=True)
        source = ROOT / "proto"
        protos = sorted(str(p.relative_to(source)) for p in source.rglob("*.proto"))
        include = str(Path(protoc.__file__).parent / "_proto")
        status = protoc.main(["grpc_tools.protoc", f"-I{source}", f"-I{include}",
                              f"--python_out={out}", f"--grpc_python_out={out}",
                              f"--pyi_out={out}", *protos])
        if status != 0:
            raise RuntimeError(f"grpc_tools.protoc failed (status {status}) on {protos}")
        for directory in [out / "tunneloffload", *(out / "tunneloffload").rglob("*")]:
            if directory.is_dir():
                (directory / "__init__.py").touch()


setup(cmdclass={"build_py": BuildWithGenerated})
