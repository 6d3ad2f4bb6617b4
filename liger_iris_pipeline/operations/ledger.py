"""The ledger: what was reduced into an output folder, one JSON line per exposure (``ledger.jsonl``).

One process writes it (the real-time service, or the batch's client); every record is flushed
and synced to disk before the next exposure starts, so a restarted service or a re-run batch
skips exactly the exposures already done. The ledger is also the night log the report reads.
"""

import json
import logging
import os
from pathlib import Path

__all__ = ["LEDGER_NAME", "Ledger"]

log = logging.getLogger(__name__)

LEDGER_NAME = "ledger.jsonl"
"""File name of the ledger in the output folder."""


class Ledger:
    """The record of the exposures reduced into an output folder.

    Parameters
    ----------
    output_dir : str or os.PathLike
        The output folder; the ledger is its ``ledger.jsonl``.
    """

    def __init__(self, output_dir):
        self.path = Path(output_dir) / LEDGER_NAME

    def records(self):
        """Return every record, oldest first.

        A line that is not a JSON object (one cut short by a crash) is left out and reported in
        the log.

        Returns
        -------
        list of dict
        """
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return []
        records = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                record = None
            if not isinstance(record, dict) or "name" not in record:
                log.warning("%s: line %d is not a complete record (cut short?): ignored", self.path, number)
                continue
            records.append(record)
        return records

    def _last_records(self):
        """Return name -> the last record of that name."""
        return {record["name"]: record for record in self.records()}

    def done_names(self):
        """Return the names whose last record is ``done``.

        Returns
        -------
        set of str
        """
        return {name for name, record in self._last_records().items() if record.get("status") == "done"}

    def failed(self):
        """Return name -> reason of the names whose last record is ``failed``.

        Returns
        -------
        dict
        """
        return {
            name: record.get("reason", "")
            for name, record in self._last_records().items()
            if record.get("status") == "failed"
        }

    def append(self, record):
        """Append one record and sync it to disk.

        Parameters
        ----------
        record : dict
            JSON-able, with at least ``name`` and ``status`` (`ExposureResult.as_record`).
        """
        if "name" not in record or "status" not in record:
            raise ValueError(f"{self.path}: a ledger record needs a name and a status, got {sorted(record)}")
        line = json.dumps(record, sort_keys=True) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+b") as stream:
            # After a crash mid-line, start on a new line: the cut line stays unreadable on its own.
            if stream.tell() > 0:
                stream.seek(-1, os.SEEK_END)
                if stream.read(1) != b"\n":
                    line = "\n" + line
            stream.write(line.encode())
            stream.flush()
            os.fsync(stream.fileno())
