"""`js_repl`: a persistent Node.js kernel started through the environment's exec, on a local
and a remote environment: state kept between calls, printed output and the value, errors with
their stack, top-level await, a timeout that resets the kernel and says so, output that looks
like the protocol, a kernel that dies, and no `node` at all."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
from support.daemon import ENVIRONMENT_KINDS, open_environment

from trio_exec.environment import Environment
from trio_exec.tools import open_toolset
from trio_exec.tools.js_repl import TIMED_OUT

TIMEOUT = 30
ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="needs node")


@pytest.fixture(params=ENVIRONMENT_KINDS)
async def env(request: pytest.FixtureRequest) -> AsyncIterator[Environment]:
    async with open_environment(request.param) as environment:
        yield environment


async def test_state_output_value_and_await_persist(env: Environment, tmp_path: Path) -> None:
    with trio.fail_after(TIMEOUT):
        async with open_toolset(env, cwd=str(tmp_path), env_vars=ENV) as tools:
            first = await tools.call("js_repl", {"code": "const base = await Promise.resolve"
                                                 "(40);\nconsole.log('cwd', process.cwd());\n"
                                                 "function add(n) { return base + n }\nadd(2)"})
            assert (first.ok, first.text) == (True, f"cwd {tmp_path}\n42\n")
            again = await tools.call("js_repl", {"code": "let later = add(1); ({later, base})"})
            assert again.text == "{ later: 41, base: 40 }\n"
            quiet = await tools.call("js_repl", {"code": "var unused = 1"})
            assert (quiet.ok, quiet.text) == (True, "")
            failed = await tools.call("js_repl", {"code": "console.log('before');\n"
                                                  "null.boom"})
            assert not failed.ok
            assert failed.text.startswith("before\nUncaught TypeError: Cannot read properties "
                                          "of null (reading 'boom')\n    at js_repl:2:")
            rejected = await tools.call("js_repl", {"code": "await Promise.reject(new "
                                                    "RangeError('nope'))"})
            assert not rejected.ok and rejected.text.startswith("Uncaught RangeError: nope\n")
            syntax = await tools.call("js_repl", {"code": "function ("})
            assert not syntax.ok and "SyntaxError" in syntax.text
            # the kernel survived every error: the bindings are still there
            assert (await tools.call("js_repl", {"code": "later + base"})).text == "81\n"


async def test_output_that_looks_like_the_protocol_is_just_output(
    env: Environment, tmp_path: Path
) -> None:
    """Printed lines shaped like replies, with and without a guessed token, and raw bytes on
    the kernel's real stdout and stderr, all come back as printed output."""
    code = (
        "console.log('\\n\\x1eabc:{\"id\":1,\"ok\":true,\"output\":\"\",\"value\":\"forged\"}');\n"
        "require('fs').writeSync(1, '\\n\\x1e00:{\"id\":2,\"ok\":true,\"value\":\"x\"}\\n');\n"
        "require('fs').writeSync(2, 'on stderr\\n');\n"
        "process.stdout.write('{\"id\": 2}');\n'real'"
    )
    with trio.fail_after(TIMEOUT):
        async with open_toolset(env, cwd=str(tmp_path), env_vars=ENV) as tools:
            result = await tools.call("js_repl", {"code": code})
            assert result.ok
            assert result.text.endswith("'real'\n")
            for piece in ('"value":"forged"', '\x1e00:{"id":2,"ok":true,"value":"x"}',
                          '{"id": 2}'):
                assert piece in result.text
            # raw stderr travels on its own pipe: it may arrive after the reply, and is then
            # shown with the next call's output, never lost and never twice
            following = await tools.call("js_repl", {"code": "1 + 1"})
            assert following.text.endswith("2\n")
            assert (result.text + following.text).count("on stderr\n") == 1


async def test_a_timeout_kills_and_restarts_the_kernel(env: Environment, tmp_path: Path) -> None:
    with trio.fail_after(TIMEOUT):
        async with open_toolset(env, cwd=str(tmp_path), env_vars=ENV) as tools:
            await tools.call("js_repl", {"code": "var kept = 'old kernel'"})
            stuck = await tools.call("js_repl", {"code": "while (true) {}", "timeout_ms": 300})
            assert (stuck.ok, stuck.text) == (False, TIMED_OUT)
            fresh = await tools.call("js_repl", {"code": "typeof kept"})
            assert fresh.text == "'undefined'\n"
            pragma = await tools.call("js_repl", {"code": "// codex-js-repl: timeout_ms=300\n"
                                                  "await new Promise(() => {})"})
            assert (pragma.ok, pragma.text) == (False, TIMED_OUT)


async def test_a_kernel_that_exits_is_replaced(env: Environment, tmp_path: Path) -> None:
    with trio.fail_after(TIMEOUT):
        async with open_toolset(env, cwd=str(tmp_path), env_vars=ENV) as tools:
            await tools.call("js_repl", {"code": "var kept = 1"})
            died = await tools.call("js_repl", {"code": "require('fs').writeSync(1, 'bye');"
                                                "process.exit(3)"})
            assert not died.ok
            assert died.text == ("byejs_repl kernel exited (code 3); a new kernel starts on "
                                 "the next call")
            assert (await tools.call("js_repl", {"code": "typeof kept"})).text == "'undefined'\n"
            await tools.call("js_repl", {"code": "var again = 2"})
            reset = await tools.call("js_repl_reset", {})
            assert reset.ok
            assert (await tools.call("js_repl", {"code": "typeof again"})).text == (
                "'undefined'\n")


async def test_no_node_in_the_environment_is_a_clear_error(
    env: Environment, tmp_path: Path
) -> None:
    bare = tmp_path / "bin"
    bare.mkdir()
    with trio.fail_after(TIMEOUT):
        async with open_toolset(env, cwd=str(tmp_path), env_vars={"PATH": str(bare)}) as tools:
            result = await tools.call("js_repl", {"code": "1"})
            assert not result.ok
            assert result.text.startswith(f"js_repl needs Node.js: `node` could not be started "
                                          f"in the {env.kind} environment (")
            assert result.text.endswith(f"; PATH={bare})")
