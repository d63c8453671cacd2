"""trio-exec vs. the reference exec-server (codex-cli 0.120.0): ``./scripts/bench --help``."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import trio

from . import scenarios as sc
from .servers import REFERENCE, TRIO_EXEC, Server, ServerStartError, raise_nofile
from .wsclient import ConnectionLost, RpcError

#: (column name, server kind, client forces immediate ACKs)
MODES: dict[str, tuple[str, bool]] = {
    "trio-exec": (TRIO_EXEC, False),
    "trio-exec+qa": (TRIO_EXEC, True),
    "reference": (REFERENCE, False),
    "ref+qa": (REFERENCE, True),
}
DEFAULT_MODES = ["trio-exec", "reference", "ref+qa"]


class Run:
    """One scenario against one mode, one repeat."""

    def __init__(self, values: dict[str, Any] | None, error: str | None, notes: list[str],
                 seconds: float) -> None:
        self.values = values or {}
        self.error = error
        self.notes = notes
        self.seconds = seconds

    def as_json(self) -> dict[str, Any]:
        return {"values": self.values, "error": self.error, "notes": self.notes,
                "seconds": round(self.seconds, 3)}


async def run_once(scenario: sc.Scenario, mode: str, data_dir: Path) -> Run:
    kind, quickack = MODES[mode]
    t0 = time.perf_counter()
    notes: list[str] = []
    server = Server(kind)  # blocking (well under a second); nothing else runs meanwhile
    cpu = sc.CpuMeter(server.pid)
    try:
        with trio.fail_after(scenario.timeout):
            async with trio.open_nursery() as nursery:
                ctx = sc.Ctx(server=server, quickack=quickack, nursery=nursery,
                             data_dir=data_dir, notes=notes)
                try:
                    cpu.start()
                    values = await scenario.fn(ctx)
                    cpu.stop()
                    notes.append(f"cpu: bench {cpu.client:.0f}%, daemon {cpu.server:.0f}%")
                finally:
                    for c in ctx.clients:
                        await c.abort()
                    nursery.cancel_scope.cancel()
        return Run(values, None, notes, time.perf_counter() - t0)
    except trio.TooSlowError:
        err = f"timed out after {scenario.timeout:g} s"
    except Exception as exc:  # every failure is reported, never raised
        err = _describe(exc)
    finally:
        alive = server.alive()
        status = server.proc.poll()
        server.stop()
    if not alive:
        err += f" (server died, status {status}; stderr tail: {server.stderr_tail(400)!r})"
    return Run(None, err, notes, time.perf_counter() - t0)


def _describe(exc: BaseException) -> str:
    """One line for a scenario failure (the first leaf of an exception group)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, (sc.BenchFailure, ConnectionLost, RpcError, OSError)):
        return f"{type(exc).__name__}: {exc}"
    # a bench bug or a reply of an unexpected shape: say where
    tb = traceback.format_exception(exc)
    return f"{type(exc).__name__}: {exc} [{tb[-2].strip() if len(tb) > 1 else ''}]"


def median_of(runs: list[Run], key: str) -> tuple[Any, str]:
    """(median value or a string, a short note like '2/3 failed')."""
    nums = [r.values[key] for r in runs if isinstance(r.values.get(key), (int, float))]
    strs = [r.values[key] for r in runs if isinstance(r.values.get(key), str)]
    errs = [r.error for r in runs if r.error]
    bad = len(runs) - len(nums)
    note = f"{bad}/{len(runs)} failed" if bad and nums else ""
    if nums:
        return statistics.median(nums), note
    if strs:
        return strs[0], ""
    if errs:
        return "FAILED", ""
    return None, ""


def fmt(fig: sc.Figure, v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, (int, float)):
        return fig.fmt.format(v)
    return str(v)[:24]


def ratio(fig: sc.Figure, a: Any, b: Any) -> str:
    if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or b == 0:
        return "-"
    r = a / b
    if not fig.better:
        return f"{r:.2f}"
    better = r < 1 if fig.better == "lower" else r > 1
    if abs(r - 1) < 0.05:
        return f"{r:.2f} (same)"
    return f"{r:.2f} ({'better' if better else 'worse'})"


def main(argv: list[str] | None = None) -> int:
    names = [s.name for s in sc.SCENARIOS]
    p = argparse.ArgumentParser(
        prog="scripts/bench",
        description="Benchmark trio-exec against the reference exec-server (codex-cli 0.120.0). "
        "Starts both servers itself (fresh ones for every run), runs each scenario against "
        "both with the same client, and prints medians. Columns: trio-exec; the reference "
        "with a plain client; the reference with a client forcing immediate ACKs "
        "(TCP_QUICKACK, ref+qa: its real server cost, since it lacks TCP_NODELAY). "
        "Ratios are trio-exec / ref+qa.",
    )
    p.add_argument("--only", default="",
                   help=f"comma-separated scenarios (names or letters): {', '.join(names)}")
    p.add_argument("--repeat", type=int, default=3, help="runs per scenario and server (default 3)")
    p.add_argument("--plain-ref-repeat", type=int, default=None,
                   help="runs of the plain-client reference (default: same as --repeat)")
    p.add_argument("--modes", default=",".join(DEFAULT_MODES),
                   help=f"columns to run, from {', '.join(MODES)} (default %(default)s)")
    p.add_argument("--rev", default=None,
                   help="benchmark trio_exec/ as committed at this git revision (e.g. HEAD) "
                   "instead of the working tree")
    p.add_argument("--budget", type=float, default=20,
                   help="minutes after which no new run starts (default 20); each run is "
                   "also bounded by its scenario's own timeout")
    p.add_argument("--json", dest="json_out", default=None, help="write all results here")
    args = p.parse_args(argv)

    selected = []
    for item in filter(None, (x.strip() for x in args.only.split(","))):
        match = [s for s in sc.SCENARIOS if item in (s.name, s.letter)]
        if not match:
            p.error(f"unknown scenario {item!r}; choose from {', '.join(names)}")
        selected.extend(match)
    if not selected:
        selected = list(sc.SCENARIOS)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for m in modes:
        if m not in MODES:
            p.error(f"unknown mode {m!r}")
    if args.repeat < 1:
        p.error("--repeat must be >= 1")
    plain_rep = args.repeat if args.plain_ref_repeat is None else args.plain_ref_repeat
    with tempfile.TemporaryDirectory(prefix="trio-exec-bench-src-") as src:
        under_test = _git_state()
        if args.rev:
            try:
                under_test = _export(args.rev, Path(src))
            except (OSError, subprocess.SubprocessError) as exc:
                print(f"bench: cannot export trio_exec at {args.rev}: {exc}", file=sys.stderr)
                return 2
            os.environ["TRIO_EXEC_BENCH_SRC"] = src
        try:
            return trio.run(_amain, selected, modes, args.repeat, plain_rep, args.json_out,
                            under_test, args.budget * 60)
        except ServerStartError as exc:
            print(f"bench: cannot start a server: {exc}", file=sys.stderr)
            return 2


def _export(rev: str, dest: Path) -> str:
    """Extract trio_exec/ at ``rev`` into ``dest``; describe what will be tested."""
    root = Path(__file__).resolve().parents[1]
    commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", rev],
                            capture_output=True, text=True, timeout=30, check=True).stdout.strip()
    archive = subprocess.run(["git", "-C", str(root), "archive", commit, "trio_exec"],
                             capture_output=True, timeout=60, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, timeout=60, check=True)
    return f"{commit} (snapshot of trio_exec/ via --rev {rev})"


def _git_state() -> str:
    root = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "trio_exec"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + (" + uncommitted changes in trio_exec/" if dirty else "")


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def _print(*a: Any) -> None:
    print(*a, flush=True)


async def _amain(selected: list[sc.Scenario], modes: list[str], repeat: int, plain_rep: int,
                 json_out: str | None, under_test: str, budget: float) -> int:
    soft, hard = raise_nofile()
    t_start = time.perf_counter()
    deadline = t_start + budget
    _print(f"# trio-exec bench  {time.strftime('%Y-%m-%d %H:%M:%S')}  host {platform.node()}  "
           f"{os.cpu_count()} cpus  python {platform.python_version()}  NOFILE {soft}/{hard}")
    _print(f"# trio-exec under test: {under_test}")
    _print(f"# load average at start: {_loadavg()}")
    _print(f"# columns: {', '.join(modes)}; repeats {repeat} "
           f"(plain reference: {plain_rep}); figures are medians over repeats")
    ref_col = "ref+qa" if "ref+qa" in modes else ("reference" if "reference" in modes else None)
    results: dict[str, dict[str, list[Run]]] = {}
    with tempfile.TemporaryDirectory(prefix="trio-exec-bench-") as tmp:
        data_dir = Path(tmp)
        if any(s.name == "fs" for s in selected):
            await trio.to_thread.run_sync(sc.prepare_fs_data, data_dir)
        for scenario in selected:
            _print(f"\n== ({scenario.letter}) {scenario.name}: {scenario.title}")
            runs: dict[str, list[Run]] = {m: [] for m in modes}
            results[scenario.name] = runs
            timed_out: set[str] = set()
            for i in range(repeat):
                for mode in modes:
                    if mode == "reference" and i >= plain_rep:
                        continue
                    if mode in timed_out:
                        _print(f"   run {i + 1} {mode:<13} skipped (an earlier run timed out)")
                        continue
                    if time.perf_counter() > deadline:
                        _print(f"   run {i + 1} {mode:<13} skipped (--budget exhausted)")
                        continue
                    run = await run_once(scenario, mode, data_dir)
                    if run.error and run.error.startswith("timed out"):
                        timed_out.add(mode)
                    runs[mode].append(run)
                    if run.error:
                        desc = f"FAILED: {run.error}"
                    else:
                        desc = "  ".join(
                            f"{f.key}={fmt(f, run.values.get(f.key))}" for f in scenario.figures
                        )
                    extra = f"  [{'; '.join(run.notes)}]" if run.notes else ""
                    _print(f"   run {i + 1} {mode:<13} {run.seconds:6.1f}s  {desc}{extra}")
            _print_scenario(scenario, runs, modes, ref_col)
    _print_table(selected, results, modes, ref_col)
    total = time.perf_counter() - t_start
    _print(f"\n# total {total:.0f} s; load average at the end: {_loadavg()}")
    if json_out:
        doc = {
            "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "trio_exec": under_test, "repeat": repeat, "modes": modes, "ratio_against": ref_col,
            "scenarios": {
                s.name: {
                    "letter": s.letter, "title": s.title,
                    "figures": [vars(f) for f in s.figures],
                    "median": {m: {f.key: median_of(results[s.name][m], f.key)[0]
                                   for f in s.figures} for m in modes},
                    "runs": {m: [r.as_json() for r in results[s.name][m]] for m in modes},
                }
                for s in selected
            },
        }
        await trio.Path(json_out).write_text(json.dumps(doc, indent=1) + "\n")
    return 0


def _print_scenario(s: sc.Scenario, runs: dict[str, list[Run]], modes: list[str],
                    ref_col: str | None) -> None:
    for mode in modes:
        for r in runs[mode]:
            if r.error:
                _print(f"   !! {mode} FAILED: {r.error}")
    for f in s.figures:
        parts = []
        for m in modes:
            v, note = median_of(runs[m], f.key)
            parts.append(f"{m} {fmt(f, v)}" + (f" ({note})" if note else ""))
        rt = "-"
        if ref_col and "trio-exec" in modes:
            rt = ratio(f, median_of(runs["trio-exec"], f.key)[0],
                       median_of(runs[ref_col], f.key)[0])
        _print(f"   {f.label} [{f.unit}]: " + " | ".join(parts) + f" | ratio {rt}")


def _print_table(selected: list[sc.Scenario], results: dict[str, dict[str, list[Run]]],
                 modes: list[str], ref_col: str | None) -> None:
    head = ["figure", "unit", *modes, f"trio/{ref_col}" if ref_col else "ratio"]
    rows = []
    for s in selected:
        for f in s.figures:
            row = [f"({s.letter}) {f.label}", f.unit + (" ↓" if f.better == "lower" else
                                                         " ↑" if f.better == "higher" else "")]
            meds = {m: median_of(results[s.name][m], f.key) for m in modes}
            for m in modes:
                v, note = meds[m]
                row.append(fmt(f, v) + ("*" if note else ""))
            if ref_col and "trio-exec" in modes:
                row.append(ratio(f, meds["trio-exec"][0], meds[ref_col][0]))
            else:
                row.append("-")
            rows.append(row)
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    _print("\n== summary (medians; ↓ lower is better, ↑ higher is better; * = some runs failed)")
    _print("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)))
    _print("  ".join("-" * w for w in widths))
    for r in rows:
        _print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))


if __name__ == "__main__":
    sys.exit(main())
