"""Generate the Python for the wire contracts in ``proto/``, or check that it is current.

The generated ``*_pb2.py``, ``*_pb2.pyi`` and ``*_pb2_grpc.py`` are committed beside their
``.proto`` sources (``proto/`` is a source root, so they import as ``smarttrader.v1.*``). They
must be produced by the pinned grpcio-tools: generated modules check the protobuf runtime
version, and a different compiler writes different bytes. Hence one script, used both by
``make proto`` (write) and by ``--check`` / the unit test (compare), with the same flags.

Usage::

    python scripts/gen_proto.py            # regenerate in place, print what changed
    python scripts/gen_proto.py --check    # exit 1 listing stale files, change nothing
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

PROTO_ROOT = Path(__file__).resolve().parent.parent / "proto"
"""The include root: ``smarttrader/v1/x.proto`` under it is imported as ``smarttrader.v1.x_pb2``."""

GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")


class ProtocError(RuntimeError):
    """protoc refused the sources; the message is its diagnostics."""


@dataclass(frozen=True)
class StaleFile:
    """A generated file that does not match what the sources generate."""

    path: str
    """Relative to the proto root, POSIX separators."""
    problem: str
    """``differs``, ``missing`` (generated but not present) or ``orphan`` (no source)."""


def proto_sources(proto_root: Path = PROTO_ROOT) -> list[str]:
    """Every ``.proto`` under ``proto_root``, as sorted POSIX paths relative to it."""
    return sorted(p.relative_to(proto_root).as_posix() for p in proto_root.rglob("*.proto"))


def generated_files(root: Path) -> list[str]:
    """Every generated Python file under ``root``, as sorted POSIX paths relative to it."""
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.name.endswith(GENERATED_SUFFIXES)
    )


def generate(proto_root: Path, out_dir: Path) -> list[str]:
    """Compile every source under ``proto_root`` into ``out_dir``; return the files written.

    protoc runs in a child interpreter (``python -m grpc_tools.protoc``, which also puts the
    bundled well-known types such as ``google/protobuf/timestamp.proto`` on the include path).
    A child keeps grpc_tools' import hook, which compiles ``.proto`` files on import, out of the
    caller's process, so an import of a generated module there proves the committed file exists.
    """
    sources = proto_sources(proto_root)
    if not sources:
        raise ProtocError(f"no .proto files under {proto_root}")
    out = out_dir.resolve()
    out.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        "-I.",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *sources,
    ]
    done = subprocess.run(command, cwd=proto_root, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ProtocError((done.stderr or done.stdout).strip() or f"protoc exit {done.returncode}")
    return generated_files(out)


def stale_files(proto_root: Path = PROTO_ROOT) -> list[StaleFile]:
    """Generated files under ``proto_root`` that differ from a fresh generation, byte for byte."""
    with tempfile.TemporaryDirectory(prefix="gen_proto-") as tmp:
        fresh_root = Path(tmp)
        fresh = generate(proto_root, fresh_root)
        problems = {rel: _compare(fresh_root / rel, proto_root / rel) for rel in fresh}
        stale = [StaleFile(rel, problem) for rel, problem in problems.items() if problem]
    stale += [StaleFile(rel, "orphan") for rel in generated_files(proto_root) if rel not in fresh]
    return sorted(stale, key=lambda s: s.path)


def write(proto_root: Path = PROTO_ROOT) -> list[StaleFile]:
    """Bring the generated files under ``proto_root`` up to date; return what was changed.

    Files whose bytes are already right are not touched; orphans (generated files whose source
    was deleted) are removed, so a deleted contract cannot stay importable by accident.
    """
    with tempfile.TemporaryDirectory(prefix="gen_proto-") as tmp:
        fresh_root = Path(tmp)
        fresh = generate(proto_root, fresh_root)
        changed = []
        for rel in fresh:
            problem = _compare(fresh_root / rel, proto_root / rel)
            if problem:
                target = proto_root / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes((fresh_root / rel).read_bytes())
                changed.append(StaleFile(rel, problem))
    for rel in generated_files(proto_root):
        if rel not in fresh:
            (proto_root / rel).unlink()
            changed.append(StaleFile(rel, "orphan"))
    return sorted(changed, key=lambda s: s.path)


def _compare(fresh: Path, committed: Path) -> str:
    """Empty when ``committed`` equals ``fresh``; otherwise what is wrong with it."""
    if not committed.is_file():
        return "missing"
    return "" if committed.read_bytes() == fresh.read_bytes() else "differs"


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it is under it, else absolute."""
    try:
        return path.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return path.as_posix()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="change nothing; exit 1 and list the stale files if generation would change any",
    )
    parser.add_argument(
        "--proto-root",
        type=Path,
        default=PROTO_ROOT,
        help=f"include root holding the .proto sources (default: {PROTO_ROOT})",
    )
    args = parser.parse_args(argv)
    root = args.proto_root.resolve()
    try:
        result = stale_files(root) if args.check else write(root)
    except ProtocError as exc:
        print(f"gen_proto: protoc failed:\n{exc}", file=sys.stderr)
        return 2
    if args.check:
        if result:
            print("gen_proto: generated code is stale; run `make proto`:", file=sys.stderr)
            for item in result:
                print(f"  {_shown(root / item.path)} ({item.problem})", file=sys.stderr)
            return 1
        print(f"gen_proto: {len(proto_sources(root))} .proto files, generated code is current")
        return 0
    for item in result:
        action = "removed" if item.problem == "orphan" else "wrote"
        print(f"gen_proto: {action} {_shown(root / item.path)}")
    if not result:
        print("gen_proto: generated code already current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
