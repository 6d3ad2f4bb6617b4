"""The night report: a static HTML page of what was reduced into an output folder.

``night_report.html`` (in the output folder) reads the night log, ``ledger.jsonl``
(`liger_iris_pipeline.operations.ledger.Ledger`; the last record of each exposure counts), and
shows a table of the exposures with a thumbnail of each quick-look PNG, their quality numbers
and latency, plots of the sky level, FWHM, zero point and latency against time
(``night_report_qa.png``, matplotlib), and the failures with their reasons. Links are relative,
so the folder can be copied or served as it is. The page reloads itself every minute (the
service rewrites it after each frame); every file is written under a temporary name and renamed.
"""

import html
import math
import os
from datetime import datetime
from pathlib import Path

__all__ = ["PLOT_NAME", "REPORT_NAME", "THUMBNAIL_DIR", "write_night_report"]

REPORT_NAME = "night_report.html"
PLOT_NAME = "night_report_qa.png"
THUMBNAIL_DIR = "thumbnails"
_THUMBNAIL_WIDTH = 160  # pixels

_COLUMNS = (
    ("filter", "filter", "{}"),
    ("exposure_type", "type", "{}"),
    ("sky_level", "sky", "{:.4g}"),
    ("sky_noise", "noise", "{:.3g}"),
    ("bunit", "unit", "{}"),
    ("n_stars", "stars", "{}"),
    ("fwhm_arcsec", 'FWHM (")', "{:.4f}"),
    ("ellipticity", "ellipticity", "{:.3f}"),
    ("n_saturated", "saturated", "{}"),
    ("n_jump", "jumps", "{}"),
    ("n_bad", "bad", "{}"),
    ("zero_point_ab", "ZP (AB)", "{:.3f}"),
)
"""QA key, column heading, format."""

_PLOTS = (
    ("sky_level", "sky level"),
    ("fwhm_arcsec", "FWHM (arcsec)"),
    ("zero_point_ab", "zero point (AB mag of 1 DN/s)"),
    ("latency", "latency (s)"),
)
"""Panels of the QA plot: record value, axis label."""


def _last_records(output_dir):
    """Return the last record of each exposure, in the order they finished."""
    from ..operations.ledger import Ledger

    records = {}
    for record in Ledger(output_dir).records():
        records.pop(record["name"], None)  # a retried exposure moves to its last attempt's place
        records[record["name"]] = record
    return sorted(records.values(), key=lambda record: record.get("finished") or "")


def _time(record):
    try:
        return datetime.fromisoformat(record.get("finished") or "")
    except ValueError:
        return None


def _value(record, key):
    if key == "latency":
        return (record.get("latency") or {}).get("total")
    return (record.get("qa") or {}).get(key)


def _cell(value, form):
    if value is None or value == "" or (isinstance(value, float) and not math.isfinite(value)):
        return "&ndash;"
    try:
        return html.escape(form.format(value))
    except (ValueError, TypeError):
        return html.escape(str(value))


def _relative(path, output_dir):
    return Path(os.path.relpath(path, output_dir)).as_posix()


def _thumbnail(png, output_dir):
    """Return the thumbnail of a quick-look PNG (made once, remade when the PNG is newer), or None."""
    from PIL import Image

    from ..lib.output import writing

    png = Path(png)
    if not png.is_file():
        return None
    target = Path(output_dir) / THUMBNAIL_DIR / png.name
    if not target.exists() or target.stat().st_mtime < png.stat().st_mtime:
        target.parent.mkdir(exist_ok=True)
        with writing(target) as temporary, Image.open(png) as image:
            image.thumbnail((_THUMBNAIL_WIDTH, _THUMBNAIL_WIDTH * image.height // image.width))
            image.save(temporary, format="PNG")
    return target


def _plot(records, path):
    """Write the QA plot: one panel per `_PLOTS` entry against the time each exposure finished, by filter."""
    import matplotlib.dates as mdates
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from ..lib.output import writing

    figure = Figure(figsize=(10, 9), dpi=96, layout="constrained")
    FigureCanvasAgg(figure)
    axes_list = figure.subplots(len(_PLOTS), 1, sharex=True)
    filters = sorted({(record.get("qa") or {}).get("filter") or "?" for record in records})
    for axes, (key, label) in zip(axes_list, _PLOTS, strict=True):
        for name in filters:
            points = [
                (_time(record), _value(record, key))
                for record in records
                if ((record.get("qa") or {}).get("filter") or "?") == name
            ]
            points = [(t, v) for t, v in points if t is not None and isinstance(v, int | float) and math.isfinite(v)]
            if points:
                axes.plot(*zip(*points, strict=True), "o-", label=name, markersize=4)
        if key == "sky_level":  # rate and cal frames are in different units
            units = sorted({(record.get("qa") or {}).get("bunit") or "?" for record in records if record.get("qa")})
            label = f"{label} ({', '.join(units)})" if units else label
        axes.set_ylabel(label)
        axes.yaxis.get_major_formatter().set_useOffset(False)  # FWHMs read as they are, not as offsets
        axes.grid(alpha=0.3)
    if axes_list[0].get_legend_handles_labels()[0]:  # nothing to label before the first frame
        axes_list[0].legend(title="filter", loc="upper left", fontsize="small")
    axes_list[-1].xaxis.set_major_formatter(mdates.DateFormatter("%H:%M"))
    axes_list[-1].set_xlabel("time the reduction finished (UTC)")
    with writing(path) as temporary:
        figure.savefig(temporary, format="png")


def _row(record, output_dir):
    products = record.get("products") or {}
    png = products.get("png")
    thumb = _thumbnail(png, output_dir) if png else None
    if thumb is not None:
        image = (
            f'<a href="{html.escape(_relative(png, output_dir))}">'
            f'<img src="{html.escape(_relative(thumb, output_dir))}" alt="{html.escape(record["name"])}"></a>'
        )
    else:
        image = ""
    qa = record.get("qa") or {}
    finished = _time(record)
    cells = [
        image,
        html.escape(record["name"]),
        html.escape(record.get("status", "")),
        finished.strftime("%H:%M:%S") if finished else "&ndash;",
        *(_cell(qa.get(key), form) for key, _, form in _COLUMNS),
        _cell(_value(record, "latency"), "{:.1f}"),
    ]
    status = "failed" if record.get("status") == "failed" else "done"
    return f'<tr class="{status}">' + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"


_STYLE = """
body { font-family: sans-serif; margin: 1em; }
table { border-collapse: collapse; font-size: 90%; }
th, td { border: 1px solid #bbb; padding: 2px 6px; text-align: right; }
td:nth-child(2), td:nth-child(3) { text-align: left; }
tr.failed { background: #fdd; }
img { width: 160px; }
#plots img { width: auto; max-width: 100%; }
"""


def write_night_report(output_dir):
    """Write ``night_report.html`` (and its plot and thumbnails) from the night log of an output folder.

    Parameters
    ----------
    output_dir : str or os.PathLike
        The folder holding ``ledger.jsonl`` and the products.

    Returns
    -------
    pathlib.Path
        The report.
    """
    from ..lib.output import writing

    output_dir = Path(output_dir)
    records = _last_records(output_dir)
    done = [record for record in records if record.get("status") == "done"]
    failed = [record for record in records if record.get("status") == "failed"]
    _plot(records, output_dir / PLOT_NAME)
    headings = ["quick-look", "exposure", "status", "finished", *(heading for _, heading, _ in _COLUMNS), "latency (s)"]
    rows = "\n".join(_row(record, output_dir) for record in records)
    failures = "\n".join(
        f"<li><b>{html.escape(record['name'])}</b>: {html.escape(record.get('reason', ''))}</li>" for record in failed
    )
    updated = f"{datetime.now().astimezone():%Y-%m-%d %H:%M:%S %Z}"
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="refresh" content="60">
<title>Night report: {html.escape(str(output_dir.resolve().name))}</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>Night report</h1>
<p>{len(done)} exposure(s) reduced, {len(failed)} failed; updated {updated}.</p>
<h2>Exposures</h2>
<table id="exposures">
<thead><tr>{"".join(f"<th>{html.escape(heading)}</th>" for heading in headings)}</tr></thead>
<tbody>
{rows}
</tbody>
</table>
<h2>Failures</h2>
<ul id="failures">
{failures or "<li>none</li>"}
</ul>
<h2>Quality against time</h2>
<div id="plots"><img src="{PLOT_NAME}" alt="sky level, FWHM, zero point and latency against time"></div>
</body>
</html>
"""
    path = output_dir / REPORT_NAME
    with writing(path) as temporary:
        Path(temporary).write_text(page, encoding="utf-8")
    return path
