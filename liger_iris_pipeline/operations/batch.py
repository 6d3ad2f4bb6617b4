"""``tmt-batch``: reduce many exposures in parallel on ``dask.distributed``.

::

    tmt-batch INPUT... --output-dir DIR [--scheduler tcp://HOST:PORT] [--workers N]
              [--threads-per-worker T] [--config service.cfg]

INPUT are Level 0 files, folders (their ``*_uncal.fits``) or association JSON files (their
members). Each exposure is one task, `reduce_exposure`, the per-exposure reducer of the
real-time service. The client (this process) decides everything that could make the result
depend on the schedule: the sky frames are reduced first, and each science frame is given, as
background members, the sky rates the client chose for it from the exposure start times (the
most recent ``max_sky_frames`` sky frames of its filter and detector taken before it, or the
first ones after it when none precede it), so a serial run gives identical products. The client
alone writes the ledger (``ledger.jsonl``); a re-run skips the exposures it lists as done.

Without ``--scheduler`` the cluster is a ``LocalCluster`` sized to the machine (`local_cluster_size`).
Whatever the cluster, ramp fitting gets as many threads as leave no core oversubscribed on the
busiest host (`ramp_fit_threads`), unless the service configuration sets ``threads``.

A worker that dies mid-task is replaced by another (dask retries the task; a product is renamed
into place only when complete, ``lib/output.py``), and the temporary files a killed writer left
behind are removed when the batch starts and ends (`liger_iris_pipeline.lib.output.partial_files`).
"""

import argparse
import contextlib
import dataclasses
import logging
import os
import signal
import sys
import time
import uuid
import warnings
from collections import defaultdict
from pathlib import Path

__all__ = [
    "BatchSummary",
    "Exposure",
    "choose_background",
    "collect_exposures",
    "local_cluster_size",
    "main",
    "ramp_fit_threads",
    "reduce_batch",
]

PROG = "tmt-batch"

LEVEL0_PATTERN = "*_uncal.fits"
"""The Level 0 files of a folder given as input."""

MEMORY_PER_LEVEL0_BYTE = 10
"""Peak memory of one reduction per byte of its Level 0 file (ramps in float, Level 1 and 2 arrays, the
background members), to keep an embedded cluster's workers within the machine's memory."""

WORKER_TIMEOUT = 60
"""Seconds to wait for a scheduler's first worker."""


@dataclasses.dataclass(frozen=True)
class Exposure:
    """A Level 0 file of the batch, as the client sees it before reducing it.

    Attributes
    ----------
    path : pathlib.Path
        The file (absolute).
    sky : bool
        A sky frame (`liger_iris_pipeline.operations.reduce.is_sky_frame`).
    sky_key : tuple or None
        What it shares with the sky frames that may serve it (`reduce.sky_key`); None when the
        file cannot be read (its task then reports why).
    start : float
        Exposure start (MJD; 0 when unknown).
    """

    path: Path
    sky: bool = False
    sky_key: tuple | None = None
    start: float = 0.0

    @property
    def name(self):
        """The file name: the ledger's key."""
        return self.path.name

    @classmethod
    def read(cls, path):
        """Read what the client needs from a Level 0 file's headers (not its arrays).

        A file that cannot be read is kept as a science frame without a filter: its task fails
        with the reducer's one-line reason, like any other failed exposure.

        Parameters
        ----------
        path : str or os.PathLike
            The Level 0 file.

        Returns
        -------
        Exposure
        """
        from ..datamodels import MODEL_CLASSES, header_metadata
        from ..datamodels.open_model import declared_model_type
        from .reduce import is_sky_frame, sky_key

        path = Path(path).resolve()
        try:
            # A damaged file's warnings (truncated...) and error are its task's to report, once.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                meta = defaultdict(lambda: None, header_metadata(path, MODEL_CLASSES[declared_model_type(path)]))
        except Exception:  # noqa: BLE001
            return cls(path)
        return cls(path, is_sky_frame(meta), sky_key(meta), meta["meta.exposure.start_time"] or 0.0)


def collect_exposures(inputs):
    """Return the Level 0 exposures named by files, folders and associations.

    Parameters
    ----------
    inputs : list of str or os.PathLike
        Level 0 files; folders (their ``*_uncal.fits``, not recursive); association JSON files
        (Level 2 or 3: all their members).

    Returns
    -------
    list of Exposure
        In the order given, each file once.

    Raises
    ------
    FileNotFoundError
        An input does not exist.
    ValueError
        No exposure at all, or two different files with the same name (their products would
        have the same names).
    """
    from ..associations.level3 import association_members

    paths = []
    for given in map(Path, inputs):
        if given.is_dir():
            paths.extend(sorted(given.glob(LEVEL0_PATTERN)))
        elif given.suffix == ".json":
            paths.extend(association_members(given))
        elif given.exists():
            paths.append(given)
        else:
            raise FileNotFoundError(f"{given}: no such file or folder")
    by_name = {}
    for path in (path.resolve() for path in paths):
        if by_name.setdefault(path.name, path) != path:
            raise ValueError(f"{path}: same name as {by_name[path.name]}; their products would overwrite each other")
    if not by_name:
        raise ValueError(f"no Level 0 exposures ({LEVEL0_PATTERN}) in {', '.join(map(str, inputs))}")
    return [Exposure.read(path) for path in by_name.values()]


def choose_background(science, sky_rates, max_frames):
    """Return the sky rate files to subtract from a science frame.

    The most recent `max_frames` sky frames with its sky key that started before it; when
    none did, the first ones after it.

    Parameters
    ----------
    science : Exposure
        The science frame.
    sky_rates : list of (Exposure, str)
        The reduced sky frames and their rate files.
    max_frames : int
        How many at most.

    Returns
    -------
    list of str
        Oldest first; empty when no sky frame serves it (the reducer then uses its own sky).
    """
    if science.sky_key is None:
        return []
    candidates = sorted(
        ((sky, rate) for sky, rate in sky_rates if sky.sky_key == science.sky_key),
        key=lambda pair: (pair[0].start, pair[0].name),
    )
    before = [pair for pair in candidates if pair[0].start <= science.start]
    chosen = before[-max_frames:] if before else candidates[:max_frames]
    return [rate for _, rate in chosen]


def local_cluster_size(n_exposures, exposure_bytes, workers=None, threads_per_worker=None):
    """Size an embedded cluster to the machine: ``(n_workers, threads_per_worker)``.

    An exposure is mostly single-threaded Python and numpy work (ramp fitting aside, whose
    threads `ramp_fit_threads` gives), so the default is one process per core with one task at a
    time each, fewer when the machine's memory or the number of exposures ask for fewer.

    Parameters
    ----------
    n_exposures : int
        Exposures to reduce.
    exposure_bytes : int
        Size of the largest Level 0 file (memory per task: `MEMORY_PER_LEVEL0_BYTE` times it).
    workers, threads_per_worker : int, optional
        The user's choice, kept when given.

    Returns
    -------
    tuple of int
    """
    from dask.system import CPU_COUNT
    from distributed.system import MEMORY_LIMIT

    threads_per_worker = threads_per_worker or 1
    if workers is None:
        by_memory = MEMORY_LIMIT // max(MEMORY_PER_LEVEL0_BYTE * exposure_bytes * threads_per_worker, 1)
        workers = max(1, min(CPU_COUNT // threads_per_worker, by_memory, n_exposures))
    return workers, threads_per_worker


def _worker_facts():
    """What the client checks on each worker: cores and package version."""
    from dask.system import CPU_COUNT

    from .. import __version__

    return {"cores": CPU_COUNT, "version": __version__}


def ramp_fit_threads(client):
    """Return the ramp-fitting threads per task that oversubscribe no worker's host.

    On each host, the cores divided by the tasks its workers run at once (the sum of their
    threads); the smallest over the hosts, at least 1. dask's workers run with
    ``OMP_NUM_THREADS=1``, so the count is passed explicitly (``ServiceConfig.threads``).

    Parameters
    ----------
    client : distributed.Client
        Connected, with at least one worker.

    Returns
    -------
    int

    Raises
    ------
    RuntimeError
        A worker runs another version of the package than the client.
    """
    from .. import __version__

    workers = client.scheduler_info(n_workers=-1)["workers"]
    facts = client.run(_worker_facts)
    tasks, cores = defaultdict(int), {}
    for address, worker in workers.items():
        if address not in facts:  # joined after the run: it is counted at the next batch
            continue
        if facts[address]["version"] != __version__:
            raise RuntimeError(
                f"worker {address} runs liger_iris_pipeline {facts[address]['version']}, "
                f"the client {__version__}: every worker needs the same version"
            )
        tasks[worker["host"]] += worker["nthreads"]
        cores[worker["host"]] = facts[address]["cores"]
    return max(1, min((cores[host] // tasks[host] for host in tasks), default=1))


@dataclasses.dataclass
class BatchSummary:
    """What a batch did.

    Attributes
    ----------
    records : list of dict
        The ledger records written by this run, in completion order.
    skipped : list of str
        Names already done in the ledger.
    removed : list of str
        Temporary files left by killed writers, removed.
    seconds : float
        Wall time of the reductions (first submission to last result).
    """

    records: list = dataclasses.field(default_factory=list)
    skipped: list = dataclasses.field(default_factory=list)
    removed: list = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    @property
    def done(self):
        """Names reduced by this run."""
        return [record["name"] for record in self.records if record["status"] == "done"]

    @property
    def failed(self):
        """Name -> one-line reason of the exposures that failed in this run."""
        return {record["name"]: record["reason"] for record in self.records if record["status"] != "done"}

    @property
    def per_minute(self):
        """Exposures reduced per minute of wall time."""
        return 60 * len(self.done) / self.seconds if self.seconds > 0 else 0.0


def _remove_partial_files(output_dir):
    from ..lib.output import partial_files

    removed = partial_files(output_dir)
    for path in removed:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    return removed


def _record(future, exposure):
    """Return the ledger record of a finished task; a task that raised is a failed exposure."""
    from distributed import KilledWorker

    from ..lib.errors import failure_message
    from .reduce import ExposureResult

    try:
        return future.result()
    except KilledWorker as exc:  # dask gave up after allowed-failures lost workers
        reason = (
            f"{exposure.path}: {exc.allowed_failures + 1} workers died while reducing it "
            "(out of memory? their logs say why)"
        )
    except Exception as exc:  # noqa: BLE001 - the task could not run (e.g. a worker without the package)
        reason = failure_message(exc, exposure.path)
    return ExposureResult(input=str(exposure.path), name=exposure.name, status="failed", reason=reason).as_record()


def reduce_batch(exposures, output_dir, client, config=None, progress=None):
    """Reduce exposures on a dask cluster, the sky frames first; write the ledger as results come.

    Parameters
    ----------
    exposures : list of Exposure
        What to reduce (`collect_exposures`); names done in the ledger are skipped.
    output_dir : str or os.PathLike
        Where the products and the ledger go (created if needed).
    client : distributed.Client
        Connected to the cluster.
    config : ServiceConfig, optional
        Passed to every task (``threads``: `ramp_fit_threads` when None).
    progress : callable, optional
        Called with each record as it is written.

    Returns
    -------
    BatchSummary
    """
    from distributed import as_completed

    from .ledger import Ledger
    from .reduce import ServiceConfig, reduce_exposure

    output_dir = Path(output_dir).resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    config = config or ServiceConfig()
    summary = BatchSummary(removed=_remove_partial_files(output_dir))
    ledger = Ledger(output_dir)
    done = {record["name"]: record for record in ledger.records() if record["status"] == "done"}
    summary.skipped = [exposure.name for exposure in exposures if exposure.name in done]
    pending = [exposure for exposure in exposures if exposure.name not in done]
    if not pending:
        return summary
    if config.threads is None:
        config = dataclasses.replace(config, threads=ramp_fit_threads(client))
    sky_rates = [(e, done[e.name]["products"]["rate"]) for e in exposures if e.sky and e.name in done]
    skies_left = defaultdict(int)
    for exposure in pending:
        skies_left[exposure.sky_key] += exposure.sky
    held = defaultdict(list)  # science frames waiting for the sky frames of their key
    batch = uuid.uuid4().hex[:8]
    running = as_completed()
    tasks = {}

    def submit(exposure, background):
        future = client.submit(
            reduce_exposure,
            str(exposure.path),
            str(output_dir),
            config,
            background,
            key=f"{exposure.name}-{batch}",
            pure=False,
        )
        tasks[future.key] = exposure
        running.add(future)

    def submit_science(exposure):
        submit(exposure, choose_background(exposure, sky_rates, config.max_sky_frames))

    start = time.perf_counter()
    for exposure in pending:
        if exposure.sky:
            submit(exposure, None)
        elif config.background == "sky_frames" and skies_left[exposure.sky_key]:
            held[exposure.sky_key].append(exposure)
        else:
            submit_science(exposure)
    for future in running:
        exposure = tasks.pop(future.key)
        record = _record(future, exposure)
        future.release()
        ledger.append(record)
        summary.records.append(record)
        if progress is not None:
            progress(record)
        if exposure.sky:
            if record["status"] == "done":
                sky_rates.append((exposure, record["products"]["rate"]))
            skies_left[exposure.sky_key] -= 1
            if not skies_left[exposure.sky_key]:
                for science in held.pop(exposure.sky_key, []):
                    submit_science(science)
    summary.seconds = time.perf_counter() - start
    summary.removed += _remove_partial_files(output_dir)
    return summary


def _ignore_interrupts():
    """Make a worker process ignore SIGINT (run on each embedded worker)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def _client(args, exposures):
    """Yield a dask client: on the scheduler given, or on an embedded cluster sized to the machine."""
    from distributed import Client, LocalCluster

    if args.scheduler:
        with Client(args.scheduler, timeout=WORKER_TIMEOUT) as client:
            client.wait_for_workers(1, timeout=WORKER_TIMEOUT)
            yield client
        return
    largest = max(exposure.path.stat().st_size for exposure in exposures)
    workers, threads = local_cluster_size(len(exposures), largest, args.workers, args.threads_per_worker)
    # Processes, not threads: most of a reduction holds the GIL. The dashboard on any free port.
    with LocalCluster(n_workers=workers, threads_per_worker=threads, processes=True, dashboard_address=":0") as cluster:
        try:
            with Client(cluster) as client:
                # Ctrl-C reaches the whole process group: the client alone handles it, closing the cluster.
                client.run(_ignore_interrupts)
                yield client
        finally:
            # A worker slow to exit (busy, or a loaded machine) is killed after 4 s with a warning; nothing is
            # lost by then: the results are in the ledger, and an interrupted exposure leaves no product.
            logging.getLogger("distributed.nanny").setLevel(logging.ERROR)


class _OneLineParser(argparse.ArgumentParser):
    """Usage errors in one line, like every other failure of the command."""

    def error(self, message):
        self.exit(2, f"{PROG}: error: {message} (see --help)\n")


def _positive(text):
    """An argparse type: an integer of at least 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def _parser():
    parser = _OneLineParser(prog=PROG, description="Reduce many Level 0 exposures in parallel on dask.distributed.")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="Level 0 files, folders or association files")
    parser.add_argument("--output-dir", required=True, type=Path, help="products and the ledger (ledger.jsonl)")
    parser.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="a running dask scheduler (default: embedded)")
    parser.add_argument("--workers", type=_positive, metavar="N", help="embedded cluster: worker processes")
    parser.add_argument("--threads-per-worker", type=_positive, metavar="T", help="embedded cluster: tasks per worker")
    parser.add_argument("--config", type=Path, help="service configuration (.cfg, ServiceConfig's keys)")
    parser.add_argument("--debug", "--verbose", "-v", action="store_true", help="tracebacks of failures")
    return parser


def _run(args):
    from tqdm import tqdm

    from ..crds_plugin import configure_environment
    from .ledger import Ledger
    from .reduce import ServiceConfig

    if args.scheduler and (args.workers or args.threads_per_worker):
        raise ValueError("--workers and --threads-per-worker size the embedded cluster, not a --scheduler's workers")
    config = ServiceConfig.from_file(args.config) if args.config else ServiceConfig()
    wall = time.perf_counter()
    exposures = collect_exposures(args.inputs)
    done = Ledger(args.output_dir).done_names()
    pending = [exposure for exposure in exposures if exposure.name not in done]
    if not pending:  # no cluster needed
        return _report(reduce_batch(exposures, args.output_dir, None, config), time.perf_counter() - wall)
    configure_environment()  # embedded workers inherit this environment: the CRDS cache, read-only
    with _client(args, pending) as client:
        threads = ramp_fit_threads(client)  # and every worker's package version checked
        if config.threads is None:
            config = dataclasses.replace(config, threads=threads)
        workers = client.scheduler_info(n_workers=-1)["workers"].values()
        print(
            f"{PROG}: {len(pending)} exposure(s) to reduce ({len(exposures) - len(pending)} already done) on "
            f"{len(workers)} worker(s), {sum(w['nthreads'] for w in workers)} task(s) at a time, "
            f"ramp fitting on {config.threads} thread(s) each",
            flush=True,
        )
        if "dashboard" in client.scheduler_info()["services"]:
            print(f"{PROG}: dashboard {client.dashboard_link}", flush=True)
        # disable=None: a bar on a terminal only, not in logs.
        with tqdm(total=len(pending), unit="exposure", desc=PROG, disable=None) as bar:
            summary = reduce_batch(exposures, args.output_dir, client, config, progress=lambda _: bar.update())
    return _report(summary, time.perf_counter() - wall)


def _report(summary, wall):
    """Print the summary (stdout) and one line per failed exposure (stderr); return the exit status."""
    for path in summary.removed:
        print(f"{PROG}: removed {path}, left by a writer that was killed")
    for reason in summary.failed.values():
        print(f"{PROG}: error: {reason}", file=sys.stderr)
    print(
        f"{PROG}: {len(summary.done)} done, {len(summary.failed)} failed, {len(summary.skipped)} already done; "
        f"{summary.seconds:.1f} s reducing ({summary.per_minute:.1f} exposures/min), {wall:.1f} s in all",
        flush=True,
    )
    return 1 if summary.failed else 0


def main(argv=None):
    """Run ``tmt-batch``.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 when every exposure is done, 1 when any failed (or the batch could not run), 2 for
        usage errors.
    """
    from ..lib.errors import run_command

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    return run_command(PROG, lambda: _run(args), argv=argv)


if __name__ == "__main__":
    sys.exit(main())
