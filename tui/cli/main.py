"""The `facepair` command line. With no command it opens the Textual app.

Each group of commands lives in a module of `tui/cli/commands/` with a `register(subparsers, parents)`
function; heavy libraries (jax, dlib, textual) are imported inside the handlers, so `--help` and
light commands start fast and `facepair bench train` runs where dlib or Textual are missing.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from core.errors import FacepairError
from core.jaxmodels.presets import PresetError

COMMAND_MODULES = (
    "tui.cli.commands.projects",
    "tui.cli.commands.extract",
    "tui.cli.commands.faces",
    "tui.cli.commands.missing",
    "tui.cli.commands.train",
    "tui.cli.commands.convert",
    "tui.cli.commands.fit",
    "tui.cli.commands.evaluate",
    "tui.cli.commands.export",
    "tui.cli.commands.demo",
    "tui.cli.commands.bench",
    "tui.cli.commands.plan",
    "tui.cli.commands.jobs",
)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--home", default=argparse.SUPPRESS,
                        help="projects home (default: $FACEPAIR_HOME, else ~/.local/share/facepair)")
    parser = argparse.ArgumentParser(
        prog="facepair",
        description="A face-swap studio for the terminal. Run with no command to open the TUI.",
        parents=[common],
        epilog="Every project records consent; every converted output is labelled as synthetic.",
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:  # that stage is not part of this build
                continue
            raise
        module.register(sub, [common])
    return parser


def _version() -> str:
    from core import __version__

    return f"facepair {__version__}"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.command is None:
        from tui.app.app import run_app

        return run_app(home=getattr(args, "home", None)) or 0
    try:
        return int(args.func(args) or 0)
    except (FacepairError, PresetError) as e:  # PresetError: core.jaxmodels' own user error
        _print_error(str(e))
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as e:
        from core.system import diskfull

        if not diskfull.is_disk_full(e):
            raise
        # Whatever wrote (project.toml, a job folder, a copy): one line, not a traceback.
        _print_error(diskfull.describe(e, fallback=getattr(args, "home", None)))
        return 2


def _print_error(text: str) -> None:
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True).print(f"[bold red]error:[/] {escape(text)}", highlight=False, soft_wrap=True)


if __name__ == "__main__":
    sys.exit(main())
