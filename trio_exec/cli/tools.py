"""`trio-exec tools`: see and try the agent toolbox from the shell.

    trio-exec tools list [--json | --chat] [--cwd DIR]
    trio-exec tools call NAME 'JSON-ARGUMENTS' [--cwd DIR]

Rules:
- The environment is the configured one (`TRIO_EXEC_SERVER_URL`, else `CODEX_EXEC_SERVER_URL`:
  unset = this machine, `none` = disabled, `ws://…` = that exec-server), and only the tools it
  offers are listed or callable.
- `list` prints each offered tool with its parameters; `--json` prints the declarations as a
  JSON array in the Responses API's function-calling shape (what codex sends), `--chat` in the
  Chat Completions shape.
- `call` prints the tool's output; an image as one summary line (type, size, and the start of
  its data URL) instead of the whole data URL.
- Exit status: 0 when the tool succeeded, 1 when it reported a failure (or the environment
  could not be reached), 2 for bad arguments: a malformed or non-object JSON, arguments that do
  not fit the schema, a tool that does not exist or is not offered, a bad configuration.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import trio

from trio_exec.client.errors import ClientError
from trio_exec.environment import EnvironmentConfigError, EnvironmentManager
from trio_exec.tools import ToolArgumentError, ToolRejected, ToolResult, ToolSet, open_toolset

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DATA_URL_PREVIEW = 48


class UsageError(Exception):
    pass


def configure_parser(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="tools_command", required=True)
    listing = actions.add_parser("list", help="print the offered tools and their schemas")
    shape = listing.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true",
                       help="JSON function declarations (Responses API shape)")
    shape.add_argument("--chat", action="store_true",
                       help="JSON function declarations (Chat Completions shape)")
    call = actions.add_parser("call", help="run one tool and print its result")
    call.add_argument("name", help="the tool's name")
    call.add_argument("arguments", nargs="?", default="{}",
                      help="its arguments as a JSON object (default {})")
    for sub in (listing, call):
        sub.add_argument("--cwd", help="working directory in the environment (default: ours)")


def run(args: argparse.Namespace) -> int:
    """The `tools` subcommand; returns the exit status."""
    try:
        manager = EnvironmentManager.from_environ(client_name="trio-exec tools")
        cwd = manager.resolve_cwd(args.cwd)
        arguments = _arguments(args) if args.tools_command == "call" else {}
    except (EnvironmentConfigError, UsageError) as exc:
        print(f"trio-exec tools: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return trio.run(_main, manager, cwd, args, arguments)
    except Exception as exc:  # from inside nurseries, wrapped in exception groups
        cause = _sole(exc)
        if isinstance(cause, BrokenPipeError):  # `| head`: the reader has gone
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_FAILED
        if isinstance(cause, (ClientError, OSError)):
            print(f"trio-exec tools: the environment is unavailable: {cause}", file=sys.stderr)
            return EXIT_FAILED
        raise


def _sole(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def _arguments(args: argparse.Namespace) -> dict[str, Any]:
    try:
        value = json.loads(args.arguments)
    except json.JSONDecodeError as exc:
        raise UsageError(f"the arguments are not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise UsageError("the arguments must be a JSON object, e.g. '{\"cmd\": \"ls\"}'")
    return value


async def _main(manager: EnvironmentManager, cwd: str, args: argparse.Namespace,
                arguments: dict[str, Any]) -> int:
    async with manager.open() as env, open_toolset(env, cwd=cwd) as tools:
        if args.tools_command == "list":
            _print_list(tools, args)
            return EXIT_OK
        try:
            tools.check(args.name, arguments)
        except (ToolRejected, ToolArgumentError) as exc:
            print(f"trio-exec tools: {exc}", file=sys.stderr)
            return EXIT_USAGE
        result = await tools.call(args.name, arguments)
        print(_render(result))
        return EXIT_OK if result.ok else EXIT_FAILED


def _print_list(tools: ToolSet, args: argparse.Namespace) -> None:
    if args.json or args.chat:
        style = "chat" if args.chat else "responses"
        print(json.dumps([s.to_openai(style) for s in tools.specs()], indent=2))
        return
    print(f"{tools.env.kind} environment: {len(tools.specs())} tools")
    for spec in tools.specs():
        print(f"\n{spec.name}  (needs {spec.capability})\n  {spec.description}")
        required = set(spec.parameters["required"])
        for name, decl in spec.parameters["properties"].items():
            need = "required" if name in required else "optional"
            print(f"  - {name}: {decl['type']}, {need}. {decl['description']}")


def _render(result: ToolResult) -> str:
    if result.image is None:
        return result.text
    url = result.image.data_url
    return f"{result.text}\n{url[:DATA_URL_PREVIEW]}… ({len(url)} characters)"
