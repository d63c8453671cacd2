"""`apply_patch`: the case table on a local and a remote environment, the planner's
properties (hypothesis), all-or-nothing on a real write failure, and the tool's registration."""

from __future__ import annotations

import difflib
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import attrs
import pytest
import trio
from apply_patch_cases import CASES, Case, Tree
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from support.daemon import ENVIRONMENT_KINDS, open_environment

from trio_exec.environment import Capabilities, Environment
from trio_exec.environment.local import open_local_environment
from trio_exec.tools import open_toolset
from trio_exec.tools.patch_parse import parse_patch
from trio_exec.tools.patch_plan import (
    MISSING,
    SUMMARY_HEADER,
    FileBytes,
    PatchConflict,
    plan_patch,
)

TIMEOUT = 15


@pytest.fixture(params=ENVIRONMENT_KINDS)
async def env(request: pytest.FixtureRequest) -> AsyncIterator[Environment]:
    async with open_environment(request.param) as environment:
        yield environment


def make_tree(root: Path, tree: Tree) -> None:
    for rel, content in tree.items():
        path = root / rel
        if content is None:
            path.mkdir(parents=True, exist_ok=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)


def read_tree(root: Path) -> dict[str, bytes | None]:
    """Every file's bytes, and every empty directory as None."""
    tree: dict[str, bytes | None] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        if rel != "." and not dirnames and not filenames:
            tree[rel] = None
        for name in filenames:
            tree[os.path.normpath(os.path.join(rel, name))] = Path(dirpath, name).read_bytes()
    return tree


def normal(tree: Tree) -> dict[str, bytes | None]:
    return {k: v.encode() if isinstance(v, str) else v for k, v in tree.items()}


def expected_summary(case: Case, cwd: Path) -> str:
    return "\n".join([SUMMARY_HEADER, *case.summary]).replace("{cwd}", str(cwd)) + "\n"


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_case_table(case: Case, env: Environment, tmp_path: Path) -> None:
    """Each case applied through the tool: the summary and the files after, or the refusal
    and every file exactly as before."""
    work = tmp_path / "work"
    work.mkdir()
    make_tree(work, case.before)
    with trio.fail_after(TIMEOUT):
        async with open_toolset(env, cwd=str(work)) as tools:
            result = await tools.call("apply_patch",
                                      {"input": case.patch.replace("{cwd}", str(work))})
    if case.after is None:
        assert not result.ok, result.text
        assert result.text.startswith("apply_patch rejected the patch; nothing was changed: ")
        for part in case.error:
            assert part in result.text, result.text
        assert read_tree(work) == normal(case.before)
    else:
        assert result.ok, result.text
        assert result.text == expected_summary(case, work)
        assert read_tree(work) == normal(case.after)


def test_the_table_covers_what_codex_accepts() -> None:
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)


# --------------------------------------------------------------------------- properties

LINE = st.text(st.sampled_from("ab \t-*@+\u2014\u201c"), max_size=6)


def make_patch(old: list[str], new: list[str], context: int, use_headers: bool) -> str:
    """An Update File patch turning `old` into `new`, built from difflib's grouped opcodes."""
    out = ["*** Begin Patch", "*** Update File: f"]
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for group in matcher.get_grouped_opcodes(context):
        first = group[0][1]
        header = f"@@ {old[first - 1]}" if use_headers and first > 0 else "@@"
        out.append(header)
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                out.extend(" " + line for line in old[i1:i2])
                continue
            out.extend("-" + line for line in old[i1:i2])
            out.extend("+" + line for line in new[j1:j2])
        if group[-1][2] == len(old):
            out.append("*** End of File")
    out.append("*** End Patch")
    return "\n".join(out)


@settings(max_examples=300, deadline=None)
@given(
    old=st.lists(LINE, max_size=12, unique=True).filter(lambda ls: len(ls) > 0),
    new_parts=st.lists(st.one_of(st.integers(0, 11), LINE), max_size=14),
    context=st.integers(1, 3),
    use_headers=st.booleans(),
    ending=st.sampled_from(["\n", "\r\n"]),
    final_newline=st.booleans(),
)
def test_a_patch_made_from_old_and_new_turns_old_into_new(
    old: list[str], new_parts: list[int | str], context: int, use_headers: bool, ending: str,
    final_newline: bool,
) -> None:
    """Lines of `old` are unique (so each chunk has exactly one place); `new` mixes old lines
    and new ones. The result is `new` with the file's line ending (LF when it has none),
    ending in a line end."""
    assume(final_newline or old[-1] != "")  # an unterminated empty last line is no line
    new = [old[p % len(old)] if isinstance(p, int) else p for p in new_parts]
    original = ending.join(old) + (ending if final_newline else "")
    patch = make_patch(old, new, context, use_headers)
    if old == new:
        return  # difflib makes no chunk: an Update File without changes is refused
    plan = plan_patch(parse_patch(patch), "/w", {"/w/f": FileBytes(original.encode())})
    file_ending = ending if final_newline or len(old) > 1 else "\n"  # none in the file: LF
    expected = "".join(line + file_ending for line in new)
    assert plan.writes.get("/w/f", original.encode()) == expected.encode()
    assert plan.deletes == []
    assert plan.summary == f"{SUMMARY_HEADER}\nM f\n"


@settings(max_examples=200, deadline=None)
@given(
    files=st.lists(st.lists(LINE.filter(lambda s: s.strip()), min_size=1, max_size=6,
                            unique=True), min_size=2, max_size=4),
    broken=st.integers(0, 3),
    stray=st.text(st.sampled_from("xyz"), min_size=1, max_size=4),
)
def test_a_corrupted_chunk_changes_no_file(files: list[list[str]], broken: int, stray: str
                                           ) -> None:
    """A patch updating several files, each correctly except one whose chunk asks for a line
    that is not there: applied through the tool on real files, it is refused and every file
    (and the file it would have added) is exactly as before."""
    broken %= len(files)
    ops = ["*** Add File: added.txt", "+new"]
    for n, lines in enumerate(files):
        wanted = [*lines[:1], "zz" + stray] if n == broken else lines[:1]
        ops += [f"*** Update File: f{n}", "@@", *(" " + w for w in wanted[:-1]),
                "-" + wanted[-1], "+changed"]
    text = "\n".join(["*** Begin Patch", *ops, "*** End Patch"])

    async def run(work: Path) -> tuple[bool, str]:
        async with open_local_environment() as local, open_toolset(local, cwd=str(work)) as tools:
            result = await tools.call("apply_patch", {"input": text})
            return result.ok, result.text

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for n, lines in enumerate(files):
            (work / f"f{n}").write_text("\n".join(lines) + "\n")
        before = read_tree(work)
        ok, message = trio.run(run, work)
        assert not ok
        assert f"Update File: f{broken} " in message
        assert read_tree(work) == before


def test_the_planner_touches_nothing_it_was_not_asked_to() -> None:
    """A refused plan raises; an accepted one writes only files whose bytes change."""
    ops = parse_patch("*** Begin Patch\n*** Add File: same\n+x\n*** Add File: other\n+y\n"
                      "*** End Patch")
    plan = plan_patch(ops, "/w", {"/w/same": FileBytes(b"x\n"), "/w/other": MISSING})
    assert plan.writes == {"/w/other": b"y\n"}
    with pytest.raises(PatchConflict, match="does not exist"):
        plan_patch(parse_patch("*** Begin Patch\n*** Delete File: a\n*** End Patch"), "/w",
                   {"/w/a": MISSING})


# --------------------------------------------------------------------------- writing

async def test_a_write_failure_midway_undoes_the_earlier_writes(
    env: Environment, tmp_path: Path
) -> None:
    """A real I/O failure after the verification: the patch rewrites `a`, adds `sub/b`,
    deletes `c`, then adds a file under /proc/self (which exists, but no file can be created
    there, not even by root). The writes before the failure are undone: `a`, `c` and the
    absence of `sub` are as before."""
    make_tree(tmp_path, {"a": "old\n", "c": "gone?\n"})
    before = read_tree(tmp_path)
    text = ("*** Begin Patch\n*** Update File: a\n@@\n-old\n+new\n*** Add File: sub/b\n+b\n"
            "*** Delete File: c\n*** Add File: /proc/self/apply-patch-probe\n+x\n*** End Patch")
    with trio.fail_after(TIMEOUT):
        async with open_toolset(env, cwd=str(tmp_path)) as tools:
            result = await tools.call("apply_patch", {"input": text})
    assert not result.ok
    assert result.text.startswith("apply_patch failed while writing: ")
    assert "The changes already made were undone; no file was changed." in result.text
    assert read_tree(tmp_path) == before


async def test_apply_patch_is_offered_with_the_filesystem_only() -> None:
    async with open_local_environment() as local:
        for fs_on in (True, False):
            env = attrs.evolve(local, capabilities=Capabilities(exec_enabled=True,
                                                                filesystem_enabled=fs_on))
            async with open_toolset(env, cwd="/") as tools:
                assert ("apply_patch" in tools.names()) is fs_on
                if fs_on:
                    spec = {s.name: s for s in tools.specs()}["apply_patch"]
                    assert spec.parameters["required"] == ["input"]
                    missing = await tools.call("apply_patch", {})
                    assert not missing.ok and "missing argument `input`" in missing.text
