"""``python -m benchmarks run [--size tiny|medium|full] [--only NAME] [--db …] [--json PATH]``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.figures import FIGURES
from benchmarks.postgres import ThrowawayPostgres
from benchmarks.profiles import summarise
from benchmarks.services import PROFILE_DIR_ENV
from benchmarks.suite import DATABASES, SIZES, Context, Figure, Row, run_figure, table

DEFAULT_JSON = Path("benchmarks/results/latest.json")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run figures and print the table")
    run.add_argument("--size", choices=sorted(SIZES), default="tiny")
    run.add_argument(
        "--only",
        action="append",
        choices=[figure.name for figure in FIGURES],
        help="run just this figure (repeatable)",
    )
    run.add_argument("--db", choices=[*DATABASES, "both"], default="both")
    run.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"default: {DEFAULT_JSON}")
    run.add_argument(
        "--workdir",
        type=Path,
        metavar="DIR",
        help="keep every process log and gateway record in DIR (default: a temporary folder)",
    )
    run.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="sample every worker and API process with py-spy into DIR",
    )
    commands.add_parser("list", help="list the figures")
    profile = commands.add_parser("profile", help="summarise py-spy samples from --profile")
    profile.add_argument("files", type=Path, nargs="+")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "list":
        for figure in FIGURES:
            print(f"{figure.name:<16} {figure.title}")
        return 0
    if args.command == "profile":
        print("\n\n".join(summarise(path) for path in args.files))
        return 0
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
        os.environ[PROFILE_DIR_ENV] = str(args.profile.resolve())
    figures = [figure for figure in FIGURES if not args.only or figure.name in args.only]
    databases = DATABASES if args.db == "both" else (args.db,)
    if args.workdir:
        args.workdir = args.workdir.resolve()
        args.workdir.mkdir(parents=True, exist_ok=True)
    rows = asyncio.run(_run(figures, databases, args.size, args.workdir))
    print(table(rows))
    _write_json(args.json, args.size, rows)
    failures = [row for row in rows if row.is_failure]
    for row in failures:
        print(
            f"FAILED: {row.figure} {row.label} on {row.database}: "
            f"{row.error or f'{row.value} is not {row.target}'}",
            file=sys.stderr,
        )
        if "traceback" in row.details:
            print(row.details["traceback"], file=sys.stderr)
    return 1 if failures else 0


async def _run(
    figures: Sequence[Figure], databases: Sequence[str], size: str, kept: Path | None
) -> list[Row]:
    rows: list[Row] = []
    run = asyncio.current_task()
    if run is not None:  # SIGTERM unwinds like Ctrl-C: every process and the cluster stop
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, run.cancel)
    with contextlib.ExitStack() as stack:
        if kept is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sms-bench.")))
        else:
            workdir = kept
        admin_url = None
        if "postgresql" in databases:
            admin_url = stack.enter_context(ThrowawayPostgres()).admin_url
        for figure in figures:
            for database in (kind for kind in figure.databases if kind in databases):
                print(f"… {figure.name} on {database}", file=sys.stderr, flush=True)
                # Each run gets its own folder: logs and gateway records never mix.
                scratch = workdir / f"{figure.name}-{database}"
                scratch.mkdir(exist_ok=kept is not None)
                context = Context(database, SIZES[size], scratch, admin_url)
                figure_rows = await run_figure(figure, context)
                for row in figure_rows:
                    print(
                        f"  {row.label or figure.name}: {row.error or row.value} {row.unit}",
                        file=sys.stderr,
                        flush=True,
                    )
                rows.extend(figure_rows)
    return rows


def _write_json(path: Path, size: str, rows: Sequence[Row]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "size": size,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "rows": [row.as_json() for row in rows],
    }
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
