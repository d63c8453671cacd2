"""The `trio-exec` command line: one subcommand per job, each added by its own `_add_*`
function with the function that runs it (`args.run(args) -> int`).

Rules: `main(argv) -> int` never raises for bad input. A bad setting (a value the parser or
`Config` refuses, an unusable token file) is one line on stderr naming the setting, and exit
status 2; a daemon that cannot start listening (the address taken, a name that does not
resolve) is one line naming the address, and exit status 1.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, NoReturn

import trio

from trio_exec import __version__
from trio_exec.config import (
    SETTINGS,
    Config,
    ConfigError,
    Setting,
    Settings,
    boolean,
    default_text,
    describe_changes,
    resolve,
)
from trio_exec.process.cgroup import ContainmentError
from trio_exec.proto.errors import os_error_text

log = logging.getLogger("trio_exec")

EXIT_BAD_SETTING = 2
EXIT_CANNOT_SERVE = 1

DESCRIPTION = """\
A remote-execution daemon for coding agents: it runs commands and touches files on this
machine for an agent (such as the codex CLI) running on another one, over the Codex
exec-server protocol on WebSocket. Sessions survive dropped connections."""

EPILOG = """\
examples:
  trio-exec serve --listen ws://127.0.0.1:8765
  CODEX_EXEC_SERVER_URL=ws://127.0.0.1:8765 codex
  trio-exec exec --url ws://127.0.0.1:8765 -- uname -a

`trio-exec COMMAND --help` lists the options of a command."""

class _Parser(argparse.ArgumentParser):
    """argparse with its usage errors as one line (`Error: argument --x: ...`), status 2."""

    def __init__(self, *args: Any, error_prefix: str = "Error: ", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.error_prefix = error_prefix

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_SETTING, f"{self.error_prefix}{message}\n")


def _flag_type(setting: Setting) -> Callable[[str], Any]:
    """The setting's parser as an argparse type (its reason becomes argparse's one line)."""

    def parse(text: str) -> Any:
        try:
            return setting.parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="trio-exec", description=DESCRIPTION, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-V", "--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_serve(commands)
    _add_exec(commands)
    _add_tools(commands)
    return parser


def _add_serve(commands: Any) -> None:
    serve = commands.add_parser("serve", help="run the exec-server daemon",
                                description="Run the exec-server daemon; it prints its URL.")
    serve.add_argument("--config", metavar="PATH",
                       help="a TOML file of these settings (keys as in brackets); flags win")
    for setting in SETTINGS:  # default None: a flag not given leaves the file's value
        help_text = f"{setting.help} (default {default_text(setting)}) [{setting.key}]"
        if setting.parse is boolean:  # a switch on the command line, true/false in the file
            serve.add_argument(setting.flag, dest=setting.name, action="store_const",
                               const=True, default=None, help=help_text)
            continue
        serve.add_argument(setting.flag, dest=setting.name, type=_flag_type(setting),
                           default=None, metavar=setting.metavar, help=help_text)
    serve.set_defaults(run=_serve)


def _add_exec(commands: Any) -> None:
    from trio_exec.cli import exec as exec_cli

    parser = commands.add_parser("exec", help="run a command through an exec-server",
                                 error_prefix="trio-exec exec: ")
    exec_cli.configure_parser(parser)
    parser.set_defaults(run=exec_cli.run)


def _add_tools(commands: Any) -> None:
    from trio_exec.cli import tools as tools_cli

    parser = commands.add_parser("tools", help="list or call the agent tools of the environment",
                                 error_prefix="trio-exec tools: ")
    tools_cli.configure_parser(parser)
    parser.set_defaults(run=tools_cli.run)


def settings_from_args(args: argparse.Namespace) -> Settings:
    """The layered settings: defaults, then `--config`, then the flags given."""
    return resolve({s.name: getattr(args, s.name) for s in SETTINGS}, args.config)


def config_from_args(args: argparse.Namespace) -> Config:
    return settings_from_args(args).config


def _serve(args: argparse.Namespace) -> int:
    from trio_exec import logsetup
    from trio_exec.server import run_daemon

    try:
        settings = settings_from_args(args)
    except ConfigError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return EXIT_BAD_SETTING
    logsetup.configure(settings["log_level"], settings["log_format"])
    current = settings

    def reload() -> Config:
        """SIGHUP: the file and the token file read again, the flags still winning."""
        nonlocal current
        fresh = settings_from_args(args)
        applied, deferred = describe_changes(current, fresh)
        for change in applied:  # at the level in force until now
            log.warning("reload: %s", change)
        for change in deferred:
            log.warning("reload: %s takes effect at the next start", change)
        if not applied and not deferred:
            log.warning("reload: nothing changed")
        logsetup.set_level(fresh["log_level"])
        current = fresh
        return fresh.config

    try:
        if settings.config.stdio:
            from trio_exec.stdio import run_stdio

            run_stdio(settings.config)
        else:
            trio.run(partial(run_daemon, settings.config, reload=reload))
    except ConfigError as exc:  # a token, a certificate, an exposed address without a token
        print(f"Error: {exc}", file=sys.stderr)
        return EXIT_BAD_SETTING
    except OSError as exc:  # ListenError's text names the address
        print(f"Error: {os_error_text(exc)}", file=sys.stderr)
        return EXIT_CANNOT_SERVE
    except ContainmentError as exc:  # a --process-*-max this host cannot enforce
        print(f"Error: {exc}", file=sys.stderr)
        return EXIT_BAD_SETTING
    except KeyboardInterrupt:
        return 130
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    if not (sys.argv[1:] if argv is None else argv):
        parser.print_help(sys.stderr)
        return EXIT_BAD_SETTING
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, or a bad setting already reported
        return exit_.code if isinstance(exit_.code, int) else EXIT_BAD_SETTING
    result: int = args.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
