"""The `apply_patch` case table: patches in the forms codex accepts (and refuses), each with
the files before, and the files and summary after (or the reason it is refused).

A tree maps a relative path to its bytes (str is UTF-8 encoded), or to None for an empty
directory. `{cwd}` in a patch or summary stands for the working directory. `codex` says
whether codex's own `apply_patch` ends the same way ("same"), or why we deliberately differ.
This module holds no tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Tree = dict[str, "str | bytes | None"]


@dataclass(frozen=True)
class Case:
    id: str
    before: Tree
    patch: str
    after: Tree | None = None  # None: refused, the tree stays `before`
    summary: tuple[str, ...] = ()
    error: tuple[str, ...] = ()  # substrings of the refusal
    codex: str = "same"
    notes: list[str] = field(default_factory=list)


def patch(*lines: str) -> str:
    return "\n".join(["*** Begin Patch", *lines, "*** End Patch"]) + "\n"


CASES = [
    # ---------------------------------------------------------------- add / delete
    Case("add-file", {}, patch("*** Add File: a.txt", "+hello", "+world"),
         {"a.txt": "hello\nworld\n"}, ("A a.txt",)),
    Case("add-file-creates-parent-directories", {"keep": "k\n"},
         patch("*** Add File: sub/dir/n.txt", "+x"),
         {"keep": "k\n", "sub/dir/n.txt": "x\n"}, ("A sub/dir/n.txt",)),
    Case("add-file-without-lines-is-empty", {},
         patch("*** Add File: e.txt", "*** Add File: f.txt", "+f"),
         {"e.txt": "", "f.txt": "f\n"}, ("A e.txt", "A f.txt")),
    Case("add-file-replaces-an-existing-file", {"a.txt": "old\n"},
         patch("*** Add File: a.txt", "+new"), {"a.txt": "new\n"}, ("A a.txt",)),
    Case("add-line-with-plus-only-is-an-empty-line", {},
         patch("*** Add File: a.txt", "+one", "+", "+three"),
         {"a.txt": "one\n\nthree\n"}, ("A a.txt",)),
    Case("delete-a-file-that-is-not-text", {"blob": b"\xff\x00"},
         patch("*** Delete File: blob"), {}, ("D blob",)),
    Case("delete-file", {"gone.txt": "bye\n", "keep.txt": "k\n"},
         patch("*** Delete File: gone.txt"), {"keep.txt": "k\n"}, ("D gone.txt",)),
    # ---------------------------------------------------------------- update
    Case("update-with-context-lines", {"f": "a\nb\nc\n"},
         patch("*** Update File: f", "@@", " a", "-b", "+B", " c"),
         {"f": "a\nB\nc\n"}, ("M f",)),
    Case("update-first-chunk-without-at-at-line", {"f": "import foo\nx\n"},
         patch("*** Update File: f", " import foo", "+bar"),
         {"f": "import foo\nbar\nx\n"}, ("M f",)),
    Case("update-context-header-picks-the-right-place",
         {"f": "def a():\n    pass\ndef b():\n    pass\n"},
         patch("*** Update File: f", "@@ def b():", "-    pass", "+    return 2"),
         {"f": "def a():\n    pass\ndef b():\n    return 2\n"}, ("M f",)),
    Case("update-two-chunks", {"f": "foo\nbar\nbaz\nqux\n"},
         patch("*** Update File: f", "@@", " foo", "-bar", "+BAR", "@@", " baz", "-qux",
               "+QUX"),
         {"f": "foo\nBAR\nbaz\nQUX\n"}, ("M f",)),
    Case("update-blank-lines-between-chunks-are-skipped", {"f": "a\nb\nc\nd\n"},
         patch("*** Update File: f", "@@", "-a", "+A", "", "@@", "-d", "+D"),
         {"f": "A\nb\nc\nD\n"}, ("M f",)),
    Case("update-pure-addition-appends-at-end-whatever-the-context", {"f": "a\nb\nc\n"},
         patch("*** Update File: f", "@@ a", "+x"), {"f": "a\nb\nc\nx\n"}, ("M f",)),
    Case("update-deletion-only", {"f": "1\n2\n3\n"},
         patch("*** Update File: f", "@@", " 1", "-2", " 3"), {"f": "1\n3\n"}, ("M f",)),
    Case("update-end-of-file-matches-the-last-occurrence", {"f": "x\ny\nx\ny\n"},
         patch("*** Update File: f", "@@", " x", "-y", "+Y", "*** End of File"),
         {"f": "x\ny\nx\nY\n"}, ("M f",)),
    Case("update-adds-a-missing-final-newline", {"f": "a\nb"},
         patch("*** Update File: f", "@@", "-a", "+A"), {"f": "A\nb\n"}, ("M f",)),
    Case("update-empty-patch-line-is-an-empty-context-line", {"f": "a\n\nb\n"},
         patch("*** Update File: f", "@@", " a", "", "-b", "+B"), {"f": "a\n\nB\n"},
         ("M f",)),
    Case("update-old-lines-ending-in-empty-line-retried-without-it", {"f": "a\nb\n"},
         patch("*** Update File: f", "@@", "-b", "-", "+B", "+"), {"f": "a\nB\n"}, ("M f",)),
    Case("update-ignores-trailing-whitespace-in-the-file", {"f": "a   \nb\t\n"},
         patch("*** Update File: f", "@@", " a", "-b", "+B"), {"f": "a   \nB\n"}, ("M f",)),
    Case("update-ignores-indentation-when-nothing-closer-matches", {"f": "    a\n  b\n"},
         patch("*** Update File: f", "@@", " a", "-b", "+B"), {"f": "    a\nB\n"}, ("M f",)),
    Case("update-typographic-punctuation-matches-ascii", {"f": "x \u2014 \u201cy\u201d\n"},
         patch("*** Update File: f", "@@", '-x - "y"', "+ok"), {"f": "ok\n"}, ("M f",)),
    Case("update-at-at-with-trailing-space-has-no-context", {"f": "a\nb\n"},
         patch("*** Update File: f", "@@ ", "-a", "+A"), {"f": "A\nb\n"}, ("M f",)),
    Case("move-to-a-new-directory", {"old/name.txt": "line\n", "old/other.txt": "o\n"},
         patch("*** Update File: old/name.txt", "*** Move to: renamed/dir/name.txt", "@@",
               "-line", "+line2"),
         {"renamed/dir/name.txt": "line2\n", "old/other.txt": "o\n"},
         ("M renamed/dir/name.txt",)),
    Case("move-replaces-an-existing-destination", {"a": "1\n", "b": "zz\n"},
         patch("*** Update File: a", "*** Move to: b", "@@", "-1", "+2"), {"b": "2\n"},
         ("M b",)),
    Case("move-onto-itself-is-an-update", {"f": "a\n"},
         patch("*** Update File: f", "*** Move to: f", "@@", "-a", "+b"), {"f": "b\n"},
         ("M f",), codex="codex writes the file, then deletes it"),
    # ---------------------------------------------------------------- line ends
    Case("crlf-file-keeps-crlf", {"f": "a\r\nb\r\nc\r\n"},
         patch("*** Update File: f", "@@", " a", "-b", "+B", "+B2"),
         {"f": "a\r\nB\r\nB2\r\nc\r\n"}, ("M f",)),
    Case("mixed-endings-new-lines-take-the-first", {"f": "a\r\nb\nc\n"},
         patch("*** Update File: f", "@@", " a", "-b", "+B"), {"f": "a\r\nB\r\nc\n"},
         ("M f",)),
    Case("crlf-patch-text", {"f": "a\nb\n"},
         patch("*** Update File: f", "@@", "-a", "+A").replace("\n", "\r\n"),
         {"f": "A\nb\n"}, ("M f",)),
    # ---------------------------------------------------------------- wrappers and paths
    Case("heredoc-wrapper", {"f": "a\n"},
         "<<'EOF'\n" + patch("*** Update File: f", "@@", "-a", "+b") + "EOF\n",
         {"f": "b\n"}, ("M f",)),
    Case("shell-heredoc-wrapper", {"f": "a\n"},
         "apply_patch <<'PATCH'\n" + patch("*** Update File: f", "@@", "-a", "+b") + "PATCH\n",
         {"f": "b\n"}, ("M f",), codex="codex reads this form only from a shell command"),
    Case("padded-markers", {"f": "a\n"},
         "  *** Begin Patch  \n *** Update File: f \n@@\n-a\n+b\n  *** End Patch \n\n",
         {"f": "b\n"}, ("M f",)),
    Case("absolute-and-dotted-paths", {"f": "a\n"},
         patch("*** Update File: {cwd}/f", "@@", "-a", "+b", "*** Add File: ./d/../g", "+g"),
         {"f": "b\n", "g": "g\n"}, ("A ./d/../g", "M {cwd}/f")),
    Case("same-file-added-then-updated-twice", {},
         patch("*** Add File: f", "+a", "*** Update File: f", "@@", "-a", "+b",
               "*** Update File: f", "@@", "+c"),
         {"f": "b\nc\n"}, ("A f", "M f", "M f")),
    Case("summary-lists-adds-then-updates-then-deletes", {"u": "1\n", "d": "x\n"},
         patch("*** Delete File: d", "*** Update File: u", "@@", "-1", "+2",
               "*** Add File: a", "+a"),
         {"u": "2\n", "a": "a\n"}, ("A a", "M u", "D d")),
    # ---------------------------------------------------------------- refused
    Case("context-header-not-found", {"f": "a\nb\n"},
         patch("*** Update File: f", "@@ nothere", "-a", "+b"),
         error=("Update File: f", "chunk 1", "context line `nothere` not found")),
    Case("old-lines-not-found", {"f": "a\nb\n"},
         patch("*** Update File: f", "@@", "-q", "-r", "+b"),
         error=("chunk 1 (patch line 3)", "these lines were not found", "q\nr")),
    Case("end-of-file-chunk-not-at-the-end", {"f": "x\ny\nx\nz\n"},
         patch("*** Update File: f", "@@", " x", "-y", "+Y", "*** End of File"),
         error=("not found at the end of the file",)),
    Case("update-missing-file", {}, patch("*** Update File: f", "@@", "-a", "+b"),
         error=("Update File: f", "does not exist")),
    Case("delete-missing-file", {}, patch("*** Delete File: f"),
         error=("Delete File: f", "does not exist")),
    Case("delete-a-directory", {"d": None}, patch("*** Delete File: d"),
         error=("is a directory",)),
    Case("add-over-a-directory", {"d": None}, patch("*** Add File: d", "+x"),
         error=("Add File: d", "exists and is a directory")),
    Case("add-under-a-file", {"f": "x\n"}, patch("*** Add File: f/inner", "+x"),
         error=("exists and is not a directory",)),
    Case("update-of-a-binary-file", {"b": b"\xff\xfe\n"},
         patch("*** Update File: b", "@@", "-x", "+y"), error=("not UTF-8",)),
    Case("partial-failure-changes-nothing", {"f": "a\n", "g": "1\n"},
         patch("*** Add File: new.txt", "+n", "*** Update File: f", "@@", "-a", "+b",
               "*** Delete File: g", "*** Update File: g", "@@", "-1", "+2"),
         error=("Update File: g (patch line 9)", "does not exist"),
         codex="codex keeps the changes made before the failing operation"),
    Case("second-chunk-bad-in-one-file", {"f": "a\nb\nc\n"},
         patch("*** Update File: f", "@@", "-a", "+A", "@@", "-zz", "+c"),
         error=("chunk 2 (patch line 6)",)),
    Case("invalid-file-header", {"f": "a\n"}, patch("*** Frob File: f"),
         error=("patch line 2", "`*** Frob File: f` is not a file header")),
    Case("missing-end-marker", {}, "*** Begin Patch\n*** Add File: a\n+a\n",
         error=("last line must be `*** End Patch`",)),
    Case("missing-begin-marker", {}, "*** Add File: a\n+a\n*** End Patch\n",
         error=("patch line 1", "first line must be `*** Begin Patch`")),
    Case("empty-patch", {"f": "a\n"}, patch(), error=("no file operations",)),
    Case("update-without-changes", {"f": "a\n"}, patch("*** Update File: f"),
         error=("`*** Update File: f` has no changes",)),
    Case("unexpected-line-in-a-chunk", {"f": "a\n"},
         patch("*** Update File: f", "@@", "bad", "+b"),
         error=("patch line 4", "unexpected line `bad`")),
    Case("blank-line-after-add-file-is-a-bad-header", {},
         patch("*** Add File: a", "+a", "", "*** Add File: b", "+b"),
         error=("patch line 4", "is not a file header")),
    Case("empty-chunk-before-end-of-file", {"f": "a\n"},
         patch("*** Update File: f", "@@", "*** End of File"), error=("the chunk has no lines",)),
]
