"""``tmt-watch``: the real-time service, reducing each Level 0 file as it lands.

::

    tmt-watch INCOMING OUTPUT [--config service.cfg] [--poll] [--settle SECONDS] [--once]

File events (watchdog; ``--poll`` for network filesystems) put new FITS files of INCOMING in a
waiting list; a file leaves it, in order of arrival, once its size has been stable for
``--settle`` seconds and its FITS structure is complete; one worker thread reduces the files
one at a time with a warm `ExposureReducer` (products, PNG and regions in OUTPUT), appends
each outcome to OUTPUT's ledger and refreshes the night report. A file that fails is moved to
``OUTPUT/failed/`` with its one-line reason in the ledger. SIGINT or SIGTERM: the current
frame is finished, then the service stops (exit status 0). A file is reduced once: a restarted
service skips every file the ledger has as done.
"""

import argparse
import logging
import os
import queue
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

__all__ = ["FITS_SUFFIXES", "IncomingFiles", "fits_complete", "ignored", "main"]

log = logging.getLogger(__name__)

PROG = "tmt-watch"

FITS_SUFFIXES = (".fits", ".fit", ".fts")
"""File names the service reduces."""

TEMPORARY_SUFFIXES = (".tmp", ".part")
"""The acquisition's names for files still being written (renamed when complete)."""

GIVE_UP_SETTLES = 10
"""A file whose size has not changed for this many ``--settle`` periods but whose FITS structure is
still incomplete is reduced anyway: it will not be completed, and its failure names the problem."""


def ignored(path):
    """Return True for files the service leaves alone: not FITS, hidden, or still under a temporary name.

    Parameters
    ----------
    path : str or os.PathLike
        A file of the incoming folder.

    Returns
    -------
    bool
    """
    name = os.path.basename(os.fspath(path))
    return name.startswith(".") or name.lower().endswith(TEMPORARY_SUFFIXES) or not name.lower().endswith(FITS_SUFFIXES)


def fits_complete(path):
    """Return True if every HDU of a FITS file is whole: each header has its END card and each
    HDU's data, as its header declares it (with padding), is in the file.

    Parameters
    ----------
    path : str or os.PathLike
        The file.

    Returns
    -------
    bool
    """
    import warnings

    from astropy.io import fits

    try:
        size = os.path.getsize(path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # astropy warns of truncation: that is the answer, False
            with fits.open(path, memmap=False, lazy_load_hdus=False) as hdus:
                if not len(hdus):
                    return False
                for index in range(len(hdus)):
                    info = hdus.fileinfo(index)
                    if info["datLoc"] + info["datSpan"] > size:
                        return False
    except (OSError, ValueError, TypeError, IndexError, KeyError, Warning):
        return False
    return True


class IncomingFiles:
    """Files of the incoming folder waiting to be complete, in order of arrival.

    Parameters
    ----------
    settle : float
        Seconds a file's size must stay the same before it is looked at.
    """

    def __init__(self, settle):
        self.settle = settle
        self._waiting = {}  # path -> (size, mtime, time of the last change), in order of arrival
        self._lock = threading.Lock()

    def __len__(self):
        with self._lock:
            return len(self._waiting)

    def add(self, path):
        """Note that a file appeared or changed (from a file event or the initial listing)."""
        path = os.path.abspath(os.fspath(path))
        if ignored(path):
            return
        with self._lock:
            if path not in self._waiting:
                self._waiting[path] = (None, None, time.monotonic())

    def discard(self, path):
        """Forget a file (it was moved away or deleted)."""
        with self._lock:
            self._waiting.pop(os.path.abspath(os.fspath(path)), None)

    def ready(self):
        """Return the waiting files that are complete, in order of arrival, and forget them.

        Returns
        -------
        list of str
        """
        now = time.monotonic()
        ready = []
        with self._lock:
            for path, (size, mtime, changed) in list(self._waiting.items()):
                try:
                    stat = os.stat(path)
                except FileNotFoundError:
                    del self._waiting[path]
                    continue
                if (stat.st_size, stat.st_mtime_ns) != (size, mtime):
                    self._waiting[path] = (stat.st_size, stat.st_mtime_ns, now)
                    continue
                quiet = now - changed
                if quiet < self.settle:
                    continue
                if fits_complete(path) or quiet >= GIVE_UP_SETTLES * max(self.settle, 0.5):
                    del self._waiting[path]
                    ready.append(path)
        return ready


def _event_handler(incoming_files):
    from watchdog.events import FileSystemEventHandler

    class Handler(FileSystemEventHandler):
        """Feeds `IncomingFiles` from watchdog's events (a rename counts as the file's arrival)."""

        def on_created(self, event):
            if not event.is_directory:
                incoming_files.add(event.src_path)

        def on_modified(self, event):
            if not event.is_directory:
                incoming_files.add(event.src_path)

        def on_closed(self, event):
            incoming_files.add(event.src_path)

        def on_moved(self, event):
            if not event.is_directory:
                incoming_files.discard(event.src_path)
                incoming_files.add(event.dest_path)

        def on_deleted(self, event):
            incoming_files.discard(event.src_path)

    return Handler()


class Service:
    """The service's state: the reducer, the ledger, the queue of complete files and the worker.

    Parameters
    ----------
    incoming, output : pathlib.Path
        The folders.
    config : ServiceConfig
        How each exposure is reduced.
    stop : threading.Event, optional
        Set to stop the service after the current frame.
    """

    def __init__(self, incoming, output, config, stop=None):
        from .ledger import Ledger
        from .reduce import ExposureReducer

        self.incoming, self.output = incoming, output
        self.ledger = Ledger(output)
        self.done = self.ledger.done_names()
        self.reducer = ExposureReducer(output, config)
        self.queue = queue.Queue()
        self.queued = set()
        self.stop = stop or threading.Event()
        self.fatal = None
        self.failures = 0
        for record in self.ledger.records():  # the sky frames of the night so far, for the next science frames
            products = record.get("products", {})
            # A sky frame stops at Level 1: a done frame with a rate and no cal may be one.
            if record.get("status") == "done" and "cal" not in products and os.path.isfile(products.get("rate", "")):
                self.reducer.remember_sky(products["rate"])

    def enqueue(self, path):
        """Queue a complete file for reduction, unless it is done or already queued."""
        name = os.path.basename(path)
        if name in self.done:
            log.debug("%s: already reduced (ledger), skipped", name)
            return
        if path not in self.queued:
            self.queued.add(path)
            self.queue.put(path)

    def work(self, incoming_files, once=False):
        """Queue the files that became complete and reduce them one at a time, until told to stop.

        The worker thread. The completeness checks run here, between frames, never beside a
        reduction: astropy's warning filters, which both the check and the reading of a frame
        set, belong to the whole process.

        Parameters
        ----------
        incoming_files : IncomingFiles
            The files waiting to be complete.
        once : bool
            Return when no file is waiting or queued.
        """
        while not self.stop.is_set():
            for path in incoming_files.ready():
                self.enqueue(path)
            try:
                path = self.queue.get(timeout=0.1)
            except queue.Empty:
                if once and not len(incoming_files):
                    return
                continue
            try:
                if os.path.exists(path):
                    self.reduce(path)
            except Exception as exc:  # not the frame's failure (reduce returns those): the ledger cannot be written...
                self.fatal = exc
                self.stop.set()
            finally:
                self.queued.discard(path)
                self.queue.task_done()

    def reduce(self, path):
        """Reduce one file, record it in the ledger, move it aside if it failed, refresh the report."""
        result = self.reducer.reduce(path)
        if result.status == "failed":
            self.failures += 1
            failed = self.output / "failed"
            failed.mkdir(exist_ok=True)
            try:
                shutil.move(path, failed / result.name)
            except OSError as exc:
                log.warning("%s: could not move it to %s (%s)", path, failed, exc)
        self.ledger.append(result.as_record())
        if result.status == "done":
            self.done.add(result.name)
        log.info("%s", summary(result))
        try:
            from ..quicklook.report import write_night_report

            write_night_report(self.output)
        except Exception as exc:  # noqa: BLE001 - the report is a view of the ledger; the service goes on
            log.warning("%s: night report not refreshed (%s)", self.output, " ".join(str(exc).split()))


def summary(result):
    """Return the one log line of a frame: outcome, latency per stage and the main quality numbers.

    Parameters
    ----------
    result : ExposureResult
        The frame's outcome.

    Returns
    -------
    str
    """
    latency = result.latency
    stages = ", ".join(
        f"{stage} {latency[stage]:.2f}"
        for stage in ("detector1", "image2", "spec2", "qa", "quicklook")
        if stage in latency
    )
    if result.status != "done":
        return f"{result.name} FAILED after {latency.get('total', 0):.2f} s: {result.reason} (moved to failed/)"
    qa = result.qa
    unit = qa.get("bunit", "")
    return (
        f"{result.name} done in {latency['total']:.2f} s ({stages}): "
        f"sky {qa.get('sky_level', float('nan')):.4g} +- {qa.get('sky_noise', float('nan')):.2g} {unit}, "
        f'{qa.get("n_stars", 0)} stars, FWHM {qa.get("fwhm_arcsec", float("nan")):.3f}", '
        f"ellipticity {qa.get('ellipticity', float('nan')):.2f}, ZP {qa.get('zero_point_ab', float('nan')):.2f} AB, "
        f"saturated {qa.get('n_saturated', 0)}, jumps {qa.get('n_jump', 0)}, bad {qa.get('n_bad', 0)}"
    )


def _arguments(argv):
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Reduce every new Level 0 file of INCOMING to Level 2 in OUTPUT, as it lands.",
    )
    parser.add_argument("incoming", metavar="INCOMING", type=Path, help="folder the acquisition writes to")
    parser.add_argument("output", metavar="OUTPUT", type=Path, help="products, quick-look, ledger and night report")
    parser.add_argument("--config", type=Path, help="service configuration file (see docs/operations.rst)")
    parser.add_argument("--poll", action="store_true", help="poll the folder (network filesystems) instead of events")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds a file's size must be stable (default 2)")
    parser.add_argument("--once", action="store_true", help="reduce the files already there, then exit")
    parser.add_argument("--verbose", action="store_true", help="also the pipelines' log messages")
    parser.add_argument("--debug", action="store_true", help="tracebacks of failures")
    return parser.parse_args(argv)


def _configure_logging(verbose):
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    logging.getLogger(__name__).setLevel(logging.INFO)
    logging.getLogger("liger_iris_pipeline.operations.reduce").setLevel(logging.INFO)


def run(args):
    """Run the service with parsed arguments; return the exit status."""
    from .reduce import ServiceConfig

    incoming, output = args.incoming.resolve(), args.output.resolve()
    if not incoming.is_dir():
        raise FileNotFoundError(f"{args.incoming}: no such folder")
    if output == incoming or incoming in output.parents:
        raise ValueError(f"{args.output}: the output folder must not be the incoming folder or inside it")
    if args.settle < 0:
        raise ValueError(f"--settle must be at least 0 seconds, not {args.settle}")
    config = ServiceConfig.from_file(args.config) if args.config else ServiceConfig()
    output.mkdir(parents=True, exist_ok=True)
    _configure_logging(args.verbose)
    stopping, received = threading.Event(), []

    def stop(signum, frame):
        # Only set the event: the worker finishes its frame, the main loop stops and says why.
        received.append(signal.Signals(signum).name)
        stopping.set()

    # Before the pipelines are built: a stop while starting is a clean stop too.
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    service = Service(incoming, output, config, stopping)
    incoming_files = IncomingFiles(args.settle)

    observer = None
    if not args.once:
        from watchdog.observers import Observer
        from watchdog.observers.polling import PollingObserver

        observer = (PollingObserver if args.poll else Observer)()
        observer.schedule(_event_handler(incoming_files), str(incoming), recursive=False)
        observer.start()
    # After the observer starts, so that no file falls between the listing and the first event.
    present = sorted((path for path in incoming.iterdir() if path.is_file()), key=lambda p: (p.stat().st_mtime, p.name))
    for path in present:
        incoming_files.add(path)
    log.info(
        "%s: watching %s (%s, settle %g s), products in %s; %d file(s) present, %d already done",
        PROG,
        incoming,
        "polling" if args.poll else "file events" if observer else "once",
        args.settle,
        output,
        len(present),
        len(service.done),
    )
    worker = threading.Thread(target=service.work, args=(incoming_files, args.once), name="reducer", daemon=True)
    worker.start()
    try:
        while worker.is_alive() and not service.stop.is_set():
            service.stop.wait(0.1)
    finally:
        service.stop.set()
        worker.join()
        if observer is not None:
            observer.stop()
            observer.join()
        service.reducer.forget_references()
    if service.fatal is not None:
        raise service.fatal
    reason = f"on {received[0]}" if received else "with nothing left to do"
    log.info("%s: stopped %s (%d file(s) left for the next start)", PROG, reason, service.queue.qsize())
    return 1 if args.once and service.failures else 0


def main(argv=None):
    """Run ``tmt-watch``.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 after a clean stop; 1 on an error (with ``--once``: if a file failed); 2 for usage errors.
    """
    from ..lib.errors import run_command

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = _arguments(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    return run_command(PROG, lambda: run(args), argv=argv)


if __name__ == "__main__":
    sys.exit(main())
