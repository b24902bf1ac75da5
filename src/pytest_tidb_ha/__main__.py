"""``python -m pytest_tidb_ha <command>``: the plugin's small command-line tools.

One entry per command in :data:`COMMANDS`; each lives in its own module with a
``main(argv) -> int`` and is imported only when chosen.
"""

from __future__ import annotations

import importlib
import sys

#: command -> (module, one line of help)
COMMANDS: dict[str, tuple[str, str]] = {
    "schema": ("pytest_tidb_ha.schema", "print the JSON Schema of QA case files"),
    "merge": ("pytest_tidb_ha.report.merge_command",
              "merge the results of several shards into one verdict summary"),
}


def usage() -> str:
    lines = ["usage: python -m pytest_tidb_ha COMMAND [ARGS]", "", "commands:"]
    lines += [f"  {name:<10} {text}" for name, (_, text) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        return 0 if args else 2
    if args[0] not in COMMANDS:
        print(f"unknown command {args[0]!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[args[0]][0])
    code: int = module.main(args[1:])
    return code


if __name__ == "__main__":
    sys.exit(main())
