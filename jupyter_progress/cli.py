"""``jupyter progress``: list, watch, cancel and run jobs of a running Jupyter server.

The server is found like ``jupyter server list`` finds it (Jupyter's runtime files), or
from ``JUPYTER_PROGRESS_URL``/``JUPYTER_PROGRESS_TOKEN``, or ``--url``/``--token``.
``watch`` draws terminal progress bars from the event stream (no polling) and exits
with the jobs' outcome, so a scripted notebook run shows live progress in a CI log and
fails the step when the notebook fails.

Exit codes: 0 success; 1 a watched job failed or was cancelled; 2 an error (bad
arguments, no server, unknown job); 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import httpx

from .client import (
    STREAM_ERRORS,
    ProgressAPIError,
    ProgressClient,
    ProgressClientError,
    ServerInfo,
    ServerNotFound,
    find_server,
    running_servers,
)
from .contract import JobStatus, describe_outcome, format_counts, is_final

EXIT_OK, EXIT_JOB_FAILED, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 130
#: Consecutive failed attempts to (re)open the event stream before ``watch`` gives up.
MAX_STREAM_FAILURES = 8
MAX_SAMPLES_SHOWN = 5
MAX_MESSAGE_SHOWN = 40


class CLIError(Exception):
    """A problem to report as one line, with exit code 2."""


# ----- finding the server and the job ----------------------------------------------------


def locate_server(url: str | None, token: str | None) -> ServerInfo:
    """The server to talk to, or a ``CLIError`` that says how to pick one."""
    server = find_server(url=url, token=token)
    if server is not None:
        return server
    try:
        servers = running_servers()
    except Exception:
        servers = []
    if len(servers) > 1:
        urls = ", ".join(str(info["url"]) for info in servers)
        raise CLIError(
            f"{len(servers)} Jupyter servers are running ({urls}): choose one with --url"
        )
    raise CLIError(
        "no running Jupyter server found: start one, or pass --url and --token "
        "(or set JUPYTER_PROGRESS_URL and JUPYTER_PROGRESS_TOKEN)"
    )


def server_root_dir(server: ServerInfo) -> Path | None:
    """The server's root dir, when its runtime file is on this machine."""
    try:
        servers = running_servers()
    except Exception:
        return None
    wanted = server.url.rstrip("/")
    for info in servers:
        if str(info.get("url", "")).rstrip("/") == wanted and info.get("root_dir"):
            return Path(str(info["root_dir"])).expanduser()
    return None


MAX_PAGE = 1000  # the server's largest page


def resolve_job(client: ProgressClient, reference: str) -> dict[str, Any]:
    """A job by full id, unique id prefix, or exact name."""
    if len(reference) == 32:
        try:
            return client.get_job(reference)
        except ProgressAPIError as error:
            if error.status not in (400, 404):
                raise
    jobs = client.list_page([("limit", str(MAX_PAGE))])["jobs"]  # the newest
    matches = [job for job in jobs if job["job_id"].startswith(reference)]
    if not matches:  # a name: searched in all of history
        named = client.list_page([("q", reference[:200]), ("limit", str(MAX_PAGE))])["jobs"]
        matches = [job for job in named if job["name"] == reference]
    if not matches:
        raise CLIError(f"no job matches {reference!r} (see: jupyter progress list)")
    if len(matches) > 1:
        ids = ", ".join(job["job_id"][:8] for job in matches[:5])
        raise CLIError(f"{reference!r} matches {len(matches)} jobs ({ids}): give more of the id")
    return matches[0]


# ----- rendering -------------------------------------------------------------------------


def counts(job: dict[str, Any]) -> str:
    """The PROGRESS column: ``5/10 (50.0%)``, or ``7 items`` without a total."""
    return format_counts(job)


def summary(job: dict[str, Any]) -> str:
    """One line about a job that ended, for the log."""
    return describe_outcome(job)


def print_table(jobs: list[dict[str, Any]], out: TextIO) -> None:
    if not jobs:
        print("no jobs", file=out)
        return
    rows = [("ID", "STATUS", "PROGRESS", "ERRORS", "KIND", "NAME")]
    for job in jobs:
        rows.append(
            (
                job["job_id"][:8],
                job["status"],
                counts(job),
                str((job.get("progress") or {}).get("errors", 0)),
                job["kind"],
                job["name"],
            )
        )
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[-1]]), file=out)


class Bars:
    """One tqdm bar per watched job, fed from the event stream."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.bars: dict[str, Any] = {}
        self.final: dict[str, dict[str, Any]] = {}

    def update(self, job: dict[str, Any]) -> None:
        from tqdm import tqdm

        job_id = job["job_id"]
        if job_id in self.final:
            return
        progress = job.get("progress") or {}
        bar = self.bars.get(job_id)
        if bar is None:
            bar = self.bars[job_id] = tqdm(
                total=progress.get("total"),
                desc=str(job.get("name") or job_id[:8])[:40],
                unit="item",
                file=self.stream,
                position=len(self.bars),
                leave=True,
                dynamic_ncols=True,
                mininterval=0.2 if self.stream.isatty() else 1.0,
            )
        bar.total = progress.get("total")
        bar.n = progress.get("processed", 0)
        errors = progress.get("errors", 0)
        postfix = [str(job["status"])] + ([f"{errors} errors"] if errors else [])
        if not is_final(job["status"]) and job.get("message"):
            postfix.append(str(job["message"]).replace("\n", " ")[:MAX_MESSAGE_SHOWN])
        bar.set_postfix_str(", ".join(postfix), False)
        if is_final(job["status"]):
            bar.refresh()
            bar.close()
            self.final[job_id] = job
        else:
            bar.update(0)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


# ----- commands --------------------------------------------------------------------------


def command_list(client: ProgressClient, args: argparse.Namespace) -> int:
    """Newest first, page by page from the server: ``--limit`` jobs, or ``--all``."""
    if args.limit is not None and args.limit < 1:
        raise CLIError("--limit must be at least 1")
    wanted = None if args.all else (args.limit or 100)
    filters = [("status", status) for status in args.status or ()]
    if args.search:
        filters.append(("q", args.search))
    jobs: list[dict[str, Any]] = []
    cursor = None
    while wanted is None or len(jobs) < wanted:
        size = MAX_PAGE if wanted is None else min(wanted - len(jobs), MAX_PAGE)
        page = client.list_page(
            [*filters, ("limit", str(size)), *([("before", cursor)] if cursor else [])]
        )
        jobs.extend(page["jobs"])
        cursor = page["next"]
        if cursor is None:
            break
    if cursor is not None and not args.json:
        print("(more jobs: --all lists them all, --limit N more of them)", file=sys.stderr)
    if args.json:
        print(json.dumps(jobs, indent=2))
    else:
        print_table(jobs, sys.stdout)
    return EXIT_OK


def watch_jobs(
    client: ProgressClient,
    jobs: list[dict[str, Any]],
    *,
    quiet: bool = False,
    bell: bool = False,
) -> int:
    """Follow the jobs' events until every one is final; 1 if any did not complete.

    ``bell`` rings the terminal bell once they have ended, for a user who walked away.
    """
    bars = Bars(sys.stderr)
    states = {job["job_id"]: job for job in jobs}
    try:
        for job in jobs:
            bars.update(job)
        pending = {job_id for job_id, job in states.items() if not is_final(job["status"])}
        if pending:
            events = client.events(sorted(pending), max_failures=MAX_STREAM_FAILURES)
            with contextlib.closing(events):
                for event in events:
                    job_id = event.data.get("job_id", "")
                    if job_id not in pending:
                        continue
                    if event.type == "job_removed":
                        pending.discard(job_id)
                    else:
                        states[job_id] = event.data
                        bars.update(event.data)
                        if is_final(event.data.get("status")):
                            pending.discard(job_id)
                    if not pending:
                        break
    except STREAM_ERRORS as error:
        raise CLIError(f"lost the server's event stream: {error}") from None
    finally:
        bars.close()
    if bell:
        sys.stderr.write("\a")
        sys.stderr.flush()
    outcome = EXIT_OK
    for job in states.values():
        if not quiet:
            print(summary(job))
            for sample in (job.get("error_samples") or [])[:MAX_SAMPLES_SHOWN]:
                print(f"  {sample.get('item')}: {sample.get('error')}")
        if job.get("status") != JobStatus.COMPLETED:
            outcome = EXIT_JOB_FAILED
    return outcome


def command_watch(client: ProgressClient, args: argparse.Namespace) -> int:
    if args.jobs:
        jobs = [resolve_job(client, reference) for reference in args.jobs]
    else:
        running = [("status", "pending"), ("status", "processing"), ("limit", str(MAX_PAGE))]
        jobs = client.list_page(running)["jobs"]
        if not jobs:
            print("no running jobs")
            return EXIT_OK
    return watch_jobs(client, jobs, bell=args.bell)


def command_cancel(client: ProgressClient, args: argparse.Namespace) -> int:
    job = client.cancel(resolve_job(client, args.job)["job_id"])
    print(f"{job['name']}: {job['status']} at {counts(job)}")
    return EXIT_OK


def parameter_value(text: str) -> Any:
    """``-p`` values are JSON when they parse (numbers, true, lists), else strings."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def notebook_path(path: str, root_dir: Path | None) -> str:
    """A path relative to the server's root dir, from a local path where that is known."""
    local = Path(path).expanduser()
    if root_dir is not None and (local.is_absolute() or local.exists()):
        try:
            return local.resolve().relative_to(root_dir.resolve()).as_posix()
        except ValueError:
            raise CLIError(f"{path} is not inside the server's root dir {root_dir}") from None
    return path


def command_run(client: ProgressClient, args: argparse.Namespace) -> int:
    root_dir = server_root_dir(client.server)
    body: dict[str, Any] = {"kind": "notebook", "path": notebook_path(args.notebook, root_dir)}
    parameters = {name: parameter_value(value) for name, value in args.parameters or []}
    parameters.update({name: value for name, value in args.raw_parameters or []})
    if parameters:
        body["parameters"] = parameters
    if args.output:
        body["output_path"] = notebook_path(args.output, root_dir)
    if args.name:
        body["name"] = args.name
    if args.timeout:
        body["timeout"] = args.timeout
    job = client.create_job(**body)
    if args.no_watch:
        print(job["job_id"])
        return EXIT_OK
    return watch_jobs(client, [job])


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--url", default=argparse.SUPPRESS, help="the server's base URL (default: found)"
    )
    common.add_argument("--token", default=argparse.SUPPRESS, help="the server's token")
    parser = argparse.ArgumentParser(
        prog="jupyter progress",
        description="Follow and control jupyter-progress jobs of a running Jupyter server.",
        parents=[common],
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    listing = commands.add_parser("list", parents=[common], help="list jobs, newest first")
    listing.add_argument(
        "--status",
        action="append",
        choices=[*(status.value for status in JobStatus), "finished"],
        help="only jobs of this status (repeatable; finished = completed, failed, cancelled)",
    )
    listing.add_argument("--limit", type=int, help="at most this many jobs (default 100)")
    listing.add_argument("--all", action="store_true", help="every job, page by page")
    listing.add_argument("--search", metavar="TEXT", help="only jobs whose name contains TEXT")
    listing.add_argument("--json", action="store_true", help="print the jobs as JSON")
    listing.set_defaults(handler=command_list)

    watch = commands.add_parser(
        "watch", parents=[common], help="progress bars until the jobs end (default: all running)"
    )
    watch.add_argument("jobs", nargs="*", metavar="JOB", help="job id, id prefix or name")
    watch.add_argument(
        "--bell", action="store_true", help="ring the terminal bell when the jobs have ended"
    )
    watch.set_defaults(handler=command_watch)

    cancel = commands.add_parser("cancel", parents=[common], help="cancel a job")
    cancel.add_argument("job", metavar="JOB", help="job id, id prefix or name")
    cancel.set_defaults(handler=command_cancel)

    run = commands.add_parser(
        "run", parents=[common], help="execute a notebook in the server and watch it"
    )
    run.add_argument("notebook", metavar="NOTEBOOK", help="path (relative to the server's root)")
    run.add_argument(
        "-p", "--parameter", dest="parameters", nargs=2, action="append",
        metavar=("NAME", "VALUE"), help="a parameter (JSON value, else a string)",
    )  # fmt: skip
    run.add_argument(
        "-r", "--raw", dest="raw_parameters", nargs=2, action="append",
        metavar=("NAME", "VALUE"), help="a parameter taken as a string as is",
    )  # fmt: skip
    run.add_argument("-o", "--output", help="where to write the executed notebook")
    run.add_argument("--name", help="the job's name")
    run.add_argument("--timeout", type=float, help="seconds allowed per cell")
    run.add_argument("--no-watch", action="store_true", help="print the job id and return")
    run.set_defaults(handler=command_run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``jupyter-progress`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    prefix = "jupyter progress: error:"
    client = None
    try:
        server = locate_server(getattr(args, "url", None), getattr(args, "token", None))
        client = ProgressClient(server)
        code = int(args.handler(client, args))
    except KeyboardInterrupt:
        print(file=sys.stderr)
        code = EXIT_INTERRUPTED
    except CLIError as error:
        print(f"{prefix} {error}", file=sys.stderr)
        code = EXIT_ERROR
    except ProgressAPIError as error:
        print(f"{prefix} the server refused ({error.status}): {error.message}", file=sys.stderr)
        code = EXIT_ERROR
    except (ServerNotFound, ProgressClientError) as error:
        print(f"{prefix} {error}", file=sys.stderr)
        code = EXIT_ERROR
    except httpx.HTTPError as error:
        where = client.server.url if client is not None else "the server"
        print(f"{prefix} cannot talk to {where}: {error or type(error).__name__}", file=sys.stderr)
        code = EXIT_ERROR
    except Exception as error:
        if os.environ.get("JUPYTER_PROGRESS_DEBUG"):
            raise
        print(f"{prefix} {type(error).__name__}: {error}", file=sys.stderr)
        code = EXIT_ERROR
    finally:
        if client is not None:
            client.close()
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
