"""trio-exec vs. the codex exec-servers (0.120.0, 0.169.0, 0.171.0): ``./scripts/bench --help``.

Every run gets a fresh server, every run is bounded by its scenario's timeout and the
``--budget``, and every figure printed is a median over the repeats. Each trio-exec figure is
shown with its ratio to each codex server in the run (immediate-ACK clients: their server cost)
and, for the per-request figures, to the floor of the stack: the `floor+qa` column runs the
exec floor (`floor_exec.py`) through the same scenario code, in the same repeats, so its
figures and trio-exec's are measured by one client under one load; it runs only the scenarios
that name figures it has (`Scenario.floor_keys`), and only those figures are kept from it.
"""

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
from .floor_exec import FLOOR, FloorProcess
from .servers import (
    REFERENCE,
    REFERENCE_0169,
    REFERENCE_0171,
    TRIO_EXEC,
    Server,
    ServerStartError,
    raise_nofile,
    reference_binary_of,
)
from .wsclient import ConnectionLost, RpcError

#: (column name, server kind, client forces immediate ACKs)
MODES: dict[str, tuple[str, bool]] = {
    "trio-exec": (TRIO_EXEC, False),
    "trio-exec+qa": (TRIO_EXEC, True),
    "reference": (REFERENCE, False),
    "ref+qa": (REFERENCE, True),
    "ref169+qa": (REFERENCE_0169, True),
    "ref171+qa": (REFERENCE_0171, True),
    "floor+qa": (FLOOR, True),
}
#: The newer codex columns run by default only when their server is installed.
OPTIONAL_MODES = ("ref169+qa", "ref171+qa")
DEFAULT_MODES = ["trio-exec", "reference", "ref+qa", *OPTIONAL_MODES, "floor+qa"]
#: Ratio columns, newest codex first, then the floor: (column in the ratio's name, the modes
#: it may use).
RATIO_AGAINST = (("0.169", ("ref169+qa",)), ("0.171", ("ref171+qa",)),
                 ("0.120", ("ref+qa", "reference")), ("floor", ("floor+qa",)))


def installed(mode: str) -> bool:
    kind = MODES[mode][0]
    return kind in (TRIO_EXEC, FLOOR) or reference_binary_of(kind).exists()


def ratio_cols(modes: list[str]) -> list[tuple[str, str]]:
    """[(codex version, mode)] that trio-exec's figures are divided by, newest first."""
    out = []
    for version, candidates in RATIO_AGAINST:
        for m in candidates:
            if m in modes:
                out.append((version, m))
                break
    return out


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
    # blocking (well under a second); nothing else runs meanwhile
    server: Server | FloorProcess = (
        FloorProcess() if kind == FLOOR
        else Server(kind, scenario.trio_exec_args if kind == TRIO_EXEC else ()))
    cpu = sc.CpuMeter(server.pid)
    try:
        with trio.fail_after(scenario.timeout):
            async with trio.open_nursery() as nursery:
                ctx = sc.Ctx(server=server, quickack=quickack, nursery=nursery,
                             data_dir=data_dir, notes=notes)
                try:
                    cpu.start()
                    values = await scenario.fn(ctx)
                    if kind == FLOOR:  # what the floor does not serve is not its figure
                        values = {k: v for k, v in values.items() if k in scenario.floor_keys}
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
        description="Benchmark trio-exec against the codex exec-servers 0.120.0, 0.169.0 and "
        "0.171.0. Starts every server itself (fresh ones for every run), runs each scenario "
        "against each with the same client, and prints medians. Columns: trio-exec; the 0.120 "
        "reference with a plain client; the references with a client forcing immediate ACKs "
        "(TCP_QUICKACK, ref+qa, ref169+qa, ref171+qa: their real server cost, since they lack "
        "TCP_NODELAY; the 0.169/0.171 columns run when installed). Ratios are trio-exec / "
        "each immediate-ACK codex column.",
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
    missing = [m for m in modes if m in OPTIONAL_MODES and not installed(m)]
    if missing and args.modes == p.get_default("modes"):
        modes = [m for m in modes if m not in missing]
        print(f"bench: {', '.join(missing)} not installed; left out", file=sys.stderr)
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
    ratios = ratio_cols(modes)
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
                    if MODES[mode][0] == FLOOR and not scenario.floor_keys:
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
            _print_scenario(scenario, runs, modes, ratios)
    _print_table(selected, results, modes, ratios)
    total = time.perf_counter() - t_start
    _print(f"\n# total {total:.0f} s; load average at the end: {_loadavg()}")
    if json_out:
        doc = {
            "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "trio_exec": under_test, "repeat": repeat, "modes": modes,
            "ratio_against": {v: m for v, m in ratios},
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


def _ratios(f: sc.Figure, meds: dict[str, Any], ratios: list[tuple[str, str]]) -> list[str]:
    """trio-exec's median over each codex column's, in ``ratios`` order."""
    if "trio-exec" not in meds:
        return ["-" for _ in ratios]
    return [ratio(f, meds["trio-exec"], meds[m]) for _, m in ratios]


def _print_scenario(s: sc.Scenario, runs: dict[str, list[Run]], modes: list[str],
                    ratios: list[tuple[str, str]]) -> None:
    for mode in modes:
        for r in runs[mode]:
            if r.error:
                _print(f"   !! {mode} FAILED: {r.error}")
    for f in s.figures:
        parts = []
        for m in modes:
            v, note = median_of(runs[m], f.key)
            parts.append(f"{m} {fmt(f, v)}" + (f" ({note})" if note else ""))
        meds = {m: median_of(runs[m], f.key)[0] for m in modes}
        rts = [f"/{v} {r}" for (v, _), r in zip(ratios, _ratios(f, meds, ratios), strict=True)]
        _print(f"   {f.label} [{f.unit}]: " + " | ".join(parts)
               + (" | ratio " + ", ".join(rts) if rts else ""))


def _print_table(selected: list[sc.Scenario], results: dict[str, dict[str, list[Run]]],
                 modes: list[str], ratios: list[tuple[str, str]]) -> None:
    head = ["figure", "unit", *modes, *(f"trio/{v}" for v, _ in ratios)]
    rows = []
    for s in selected:
        for f in s.figures:
            row = [f"({s.letter}) {f.label}", f.unit + (" ↓" if f.better == "lower" else
                                                         " ↑" if f.better == "higher" else "")]
            meds = {m: median_of(results[s.name][m], f.key) for m in modes}
            for m in modes:
                v, note = meds[m]
                row.append(fmt(f, v) + ("*" if note else ""))
            row.extend(_ratios(f, {m: v for m, (v, _) in meds.items()}, ratios))
            rows.append(row)
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    _print("\n== summary (medians; ↓ lower is better, ↑ higher is better; * = some runs failed)")
    _print("  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)))
    _print("  ".join("-" * w for w in widths))
    for r in rows:
        _print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))


if __name__ == "__main__":
    sys.exit(main())
