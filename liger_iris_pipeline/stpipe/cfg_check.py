"""Checking a ``.cfg`` parameter file before running it, with errors that give its line.

stpipe refuses a bad configuration with a multi-line message that names neither the file nor the
line; `check_cfg_file` finds the same problems first (syntax, unknown class, unknown parameter,
wrong type) and says where they are.
"""

import re
from pathlib import Path

__all__ = ["ConfigFileError", "check_cfg_file", "describe_validation_error"]

_SECTION = re.compile(r"^\s*(\[+)\s*([^\]]+?)\s*\]+\s*(#.*)?$")
_PROBLEM = re.compile(r"^Config parameter '([^']+)': (.*)$")
_EXTRA = re.compile(r"^Extra value '([^']+)' in (.*)$")


class ConfigFileError(ValueError):
    """A parameter file cannot configure the step it names."""


def _line_of(lines, section, key=None):
    """Return the 1-based line of `key` in `section` (a list of section names), or of the section itself."""
    stack = []
    for number, line in enumerate(lines, 1):
        match = _SECTION.match(line)
        if match:
            depth = len(match.group(1))
            stack = [*stack[: depth - 1], match.group(2)]
            if key is None and stack == section:
                return number
        elif key is not None and stack == section and re.match(rf"^\s*{re.escape(key)}\s*=", line):
            return number
    return None


def _where(path, lines, parts):
    """Return ``<path>: line N`` (or ``<path>``) for a parameter given as section names then key."""
    number = _line_of(lines, parts[:-1], parts[-1])
    return f"{path}: line {number}" if number else str(path)


def check_cfg_file(path):
    """Raise `ConfigFileError` if a ``.cfg`` file cannot configure the step or pipeline it names.

    Parameters
    ----------
    path : str or os.PathLike
        The parameter file (ConfigObj syntax).

    Returns
    -------
    type
        The Step or Pipeline class it configures.

    Raises
    ------
    ConfigFileError
        ``<path>: line N: <problem>`` for a syntax error, an unknown or missing ``class``, an
        unknown parameter or a value of the wrong type.
    """
    from configobj import ConfigObj, ConfigObjError
    from stpipe import Step, config_parser, utilities
    from stpipe.exceptions import ValidationError

    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigFileError(f"{path}: cannot read the parameter file ({exc})") from None
    try:
        config = ConfigObj(lines, raise_errors=True)
    except ConfigObjError as exc:
        number = getattr(exc, "line_number", None)
        where = f"{path}: line {number}" if number else str(path)
        text = re.sub(r"\s*at line \"?\d+\"?\.?$", "", " ".join(str(exc).split()))
        raise ConfigFileError(f"{where}: syntax error: {text}") from None
    if "class" not in config:
        raise ConfigFileError(f"{path}: no 'class = ...' line naming the step or pipeline to run")
    try:
        step_class = utilities.import_class(utilities.resolve_step_class_alias(config["class"]), Step)
    except (ImportError, AttributeError, TypeError, ValueError):
        raise ConfigFileError(
            f"{_where(path, lines, ['class'])}: unknown class {config['class']!r}: give a step or pipeline class "
            "(liger_iris_pipeline.ProcessImagerL2Pipeline) or alias (image2); `stpipe list` shows them"
        ) from None
    for key in ("class", "name"):
        config.pop(key, None)
    spec = step_class.load_spec_file()
    config = step_class.merge_config(config, str(path))
    try:
        config_parser.validate(config, spec, root_dir=str(path.parent))
    except ValidationError as exc:
        raise ConfigFileError(describe_validation_error(exc, step_class, spec, config, path, lines)) from None
    return step_class


def describe_validation_error(exc, step_class, spec, config, source, lines=()):
    """Return stpipe's complaint about a configuration as one line: where, which parameter, what is wrong.

    Parameters
    ----------
    exc : stpipe.exceptions.ValidationError
        stpipe's error.
    step_class : type
        The step or pipeline being configured.
    spec, config : configobj.ConfigObj
        Its parameter specification and the configuration that failed.
    source : str
        Where the configuration came from (a ``.cfg`` file, or the step's alias on the command line).
    lines : list of str
        The ``.cfg`` file's lines, to give the line number.

    Returns
    -------
    str
    """
    message = str(exc).splitlines()[0]
    problem = _PROBLEM.match(message)
    extra = _EXTRA.match(message)
    if problem:
        parts = problem.group(1).split("/")
        text = problem.group(2).replace('"', "'").rstrip(".")
        expected = str(_section(spec, parts[:-1]).get(parts[-1], "")).split("(", 1)[0]
        text += f" ({expected} expected)" if expected else ""
        return f"{_where(source, lines, parts)}: parameter {'.'.join(parts)}: {text}"
    if extra:
        section = [] if extra.group(2) == "root" else extra.group(2).split("/")
        name = extra.group(1)
        known = ", ".join(sorted(_section(spec, section)))
        if isinstance(_section(config, section).get(name), dict):
            number = _line_of(lines, [*section, name])
            where = f"{source}: line {number}" if number else str(source)
            return f"{where}: unknown section {name!r} for {step_class.__name__}; known: {known}"
        where = _where(source, lines, [*section, name])
        dotted = ".".join([*section, name])
        return f"{where}: unknown parameter {dotted!r} for {step_class.__name__}; known: {known}"
    return f"{source}: {' '.join(str(exc).split())}"


def _section(spec, names):
    for name in names:
        spec = spec.get(name, {})
    return spec
