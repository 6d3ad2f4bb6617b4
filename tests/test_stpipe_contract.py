"""The stpipe behaviour the package relies on beyond stpipe's public API, pinned.

``stpipe/cmdline.py`` is the one module that uses stpipe's private command line; ``stpipe/core.py``
overrides the Step hooks jwst overrides too and reads which references a step used. When an
stpipe release changes any of these, this file says which, before users see it.
"""

import inspect

import stpipe
from stpipe import Step

from liger_iris_pipeline.dark_current import DarkCurrentStep
from liger_iris_pipeline.simulate import make_detector, reference_models
from liger_iris_pipeline.stpipe import cmdline


def test_stpipe_version_is_the_one_pinned():
    major, minor = (int(part) for part in stpipe.__version__.split(".")[:2])
    assert (major, minor) >= (1, 1) and major < 2


def test_private_command_line_entry_point():
    from stpipe import _cmdline

    assert list(inspect.signature(_cmdline.step_from_cmdline).parameters)[0] == "args"
    assert cmdline._command_line_code() is _cmdline.step_from_cmdline.__code__


def test_step_hooks_we_override_exist_with_their_signatures():
    for name, parameters in {
        "_datamodels_open": ["init"],
        "_get_crds_parameters": ["dataset"],
        "_precache_references": ["self", "input_file"],
        "get_config_from_reference": ["dataset", "disable", "crds_observatory"],
        "from_config_section": ["config", "parent", "name", "config_file"],
        "finalize_result": ["self", "result", "reference_files_used"],
    }.items():
        hook = getattr(Step, name)
        assert list(inspect.signature(hook).parameters)[: len(parameters)] == parameters, name


def test_reference_files_used_is_recorded_by_get_reference_file():
    detector = make_detector((16, 16), seed=1)
    dark = reference_models(detector)["DARK"]
    step = DarkCurrentStep(override_dark=dark)
    step.get_reference_file(dark, "dark")
    assert step._reference_files_used and step._reference_files_used[-1][0] == "dark"
