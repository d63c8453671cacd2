"""Probe 02: fs/* methods in both path forms (plain path vs file:// URI).

usage: python p02_fs.py 0.169|0.120
Prints one line per request: label, request params, reply.
"""
import base64
import os
import sys
import tempfile

import trio
from wsprobe import Conn, dump, reference_server, uri

VERSION = sys.argv[1] if len(sys.argv) > 1 else "0.169"


def fixture() -> str:
    root = tempfile.mkdtemp(prefix="fsprobe ")  # a space, to see percent-encoding
    os.mkdir(f"{root}/sub")
    with open(f"{root}/f.txt", "wb") as f:
        f.write(b"hello\n")
    os.symlink("f.txt", f"{root}/lnk")
    os.symlink("sub", f"{root}/dlnk")
    os.symlink("missing", f"{root}/dangling")
    with open(f"{root}/sub/ü.txt", "wb") as f:
        f.write(b"x" * 10)
    return root


async def main() -> None:
    root = fixture()
    U = uri(root)
    cases = [
        ("meta plain", "fs/getMetadata", {"path": f"{root}/f.txt"}),
        ("meta uri", "fs/getMetadata", {"path": f"{U}/f.txt"}),
        ("meta uri unencoded space", "fs/getMetadata", {"path": f"file://{root}/f.txt"}),
        ("meta uri sandbox null", "fs/getMetadata", {"path": f"{U}/f.txt", "sandbox": None}),
        ("meta uri dir", "fs/getMetadata", {"path": f"{U}/sub"}),
        ("meta uri symlink->file", "fs/getMetadata", {"path": f"{U}/lnk"}),
        ("meta uri symlink->dir", "fs/getMetadata", {"path": f"{U}/dlnk"}),
        ("meta uri dangling", "fs/getMetadata", {"path": f"{U}/dangling"}),
        ("meta uri missing", "fs/getMetadata", {"path": f"{U}/nope"}),
        ("meta uri localhost host", "fs/getMetadata", {"path": f"file://localhost{uri(root)[7:]}/f.txt"}),
        ("meta uri other host", "fs/getMetadata", {"path": f"file://example.com{uri(root)[7:]}/f.txt"}),
        ("meta uri relative", "fs/getMetadata", {"path": "file:f.txt"}),
        ("meta uri dotdot", "fs/getMetadata", {"path": f"{U}/sub/../f.txt"}),
        ("meta uri %2F", "fs/getMetadata", {"path": f"{U}%2Ff.txt"}),
        ("meta uri query", "fs/getMetadata", {"path": f"{U}/f.txt?x=1"}),
        ("meta uri fragment", "fs/getMetadata", {"path": f"{U}/f.txt#frag"}),
        ("meta http uri", "fs/getMetadata", {"path": "http://x/etc/hostname"}),
        ("meta relative", "fs/getMetadata", {"path": "f.txt"}),
        ("meta empty", "fs/getMetadata", {"path": ""}),
        ("meta uri root", "fs/getMetadata", {"path": "file:///"}),
        ("meta plain + sandboxPolicy", "fs/getMetadata", {"path": f"{root}/f.txt", "sandboxPolicy": {"type": "read-only"}}),
        ("meta uri + sandboxPolicy", "fs/getMetadata", {"path": f"{U}/f.txt", "sandboxPolicy": {"type": "bogus"}}),
        ("read plain", "fs/readFile", {"path": f"{root}/f.txt"}),
        ("read uri", "fs/readFile", {"path": f"{U}/f.txt"}),
        ("read uri dir", "fs/readFile", {"path": f"{U}/sub"}),
        ("read uri missing", "fs/readFile", {"path": f"{U}/nope"}),
        ("readdir plain", "fs/readDirectory", {"path": root}),
        ("readdir uri", "fs/readDirectory", {"path": U}),
        ("readdir uri sub", "fs/readDirectory", {"path": f"{U}/sub"}),
        ("write uri", "fs/writeFile", {"path": f"{U}/new.txt", "dataBase64": base64.b64encode(b"new").decode()}),
        ("write uri bad b64", "fs/writeFile", {"path": f"{U}/new2.txt", "dataBase64": "!!"}),
        ("write uri no parent", "fs/writeFile", {"path": f"{U}/no/new.txt", "dataBase64": ""}),
        ("mkdir uri", "fs/createDirectory", {"path": f"{U}/d1/d2"}),
        ("mkdir uri nonrec exists", "fs/createDirectory", {"path": f"{U}/d1", "recursive": False}),
        ("copy uri", "fs/copy", {"sourcePath": f"{U}/f.txt", "destinationPath": f"{U}/f2.txt", "recursive": False}),
        ("copy uri dir nonrec", "fs/copy", {"sourcePath": f"{U}/sub", "destinationPath": f"{U}/sub2", "recursive": False}),
        ("copy uri into self", "fs/copy", {"sourcePath": f"{U}/sub", "destinationPath": f"{U}/sub/x", "recursive": True}),
        ("remove uri", "fs/remove", {"path": f"{U}/f2.txt"}),
        ("remove uri missing", "fs/remove", {"path": f"{U}/nope"}),
        ("remove uri missing noforce", "fs/remove", {"path": f"{U}/nope", "force": False}),
        ("remove uri nonempty nonrec", "fs/remove", {"path": f"{U}/d1", "recursive": False}),
        ("canon uri", "fs/canonicalize", {"path": f"{U}/lnk"}),
        ("canon uri dotdot", "fs/canonicalize", {"path": f"{U}/sub/../dlnk"}),
        ("canon uri missing", "fs/canonicalize", {"path": f"{U}/nope"}),
        ("walk uri {}", "fs/walk", {"path": U, "options": {}}),
        ("walk uri no options", "fs/walk", {"path": U}),
        ("open uri", "fs/open", {"handleId": "h1", "path": f"{U}/f.txt"}),
        ("readBlock", "fs/readBlock", {"handleId": "h1", "offset": 1, "len": 3}),
        ("readBlock eof", "fs/readBlock", {"handleId": "h1", "offset": 4, "len": 100}),
        ("close", "fs/close", {"handleId": "h1"}),
        ("close again", "fs/close", {"handleId": "h1"}),
        ("readBlock unknown", "fs/readBlock", {"handleId": "h1", "offset": 0, "len": 1}),
        ("open dir", "fs/open", {"handleId": "h2", "path": f"{U}/sub"}),
        ("open missing", "fs/open", {"handleId": "h3", "path": f"{U}/nope"}),
        ("writeBlock {}", "fs/writeBlock", {"handleId": "h1"}),
    ]
    async with reference_server(VERSION) as url:
        async with Conn.open(url) as c:
            await c.handshake()
            for label, m, p in cases:
                r = await c.call(m, p)
                shown = dump(p).replace(root, "<root>").replace(U, "<U>")
                print(f"[{label}] {m} {shown}\n    -> {dump(r).replace(root, '<root>').replace(U[7:], '<Uroot>')}")
            print("notes", c.notes)


trio.run(main)
