"""Plain command-line values without Pydantic, for a fast start (issue 21).

Typer 0.29 converts every option and argument that is not a flag through a Pydantic
``TypeAdapter``, and the first one imports Pydantic: about as long as ``import typer`` itself, on
every command, though kb's everyday options are plain strings and integers. ``install()`` lets
those values through as the adapter would return them: ``None``, a string that UTF-8 can encode,
a decimal integer within the option's ``min``/``max``, or a list of such strings or integers. Any
other value, and every other type (paths, choices, dates, files, parsers, clamps), goes to
Typer's own coercion, which gives the same result or the same error message as before.
Typer versions without this coercion layer (before 0.29) are left as they are.
"""

import re
from typing import Any, get_args, get_origin

_NOT_PLAIN = object()
_INTEGER = re.compile(r"-?(0|[1-9][0-9]{0,17})")      # what int() and Pydantic read alike, well inside int64


def _plain_item(annotation: Any, value: Any, parameter_info) -> Any:
    """``value`` as Typer's adapter returns it for ``annotation``, or ``_NOT_PLAIN``."""
    if annotation is str and type(value) is str:
        try:
            value.encode("utf-8")       # a lone surrogate (an undecodable argv byte) is Pydantic's to refuse
        except UnicodeEncodeError:
            return _NOT_PLAIN
        return value
    if annotation is int and (type(value) is int or type(value) is str and _INTEGER.fullmatch(value)):
        number = int(value)             # a default (an int) or a typed decimal
        low, high = parameter_info.min, parameter_info.max
        if (low is None or number >= low) and (high is None or number <= high):
            return number
    return _NOT_PLAIN


def _is_plain(descriptor) -> bool:
    """Whether plain values of this parameter may skip the adapter: str or int (or a list of them),
    no parser, no file, no clamping."""
    info = descriptor.parameter_info
    if info.parser is not None or descriptor.file_annotation is not None or info.clamp:
        return False
    annotation = descriptor.annotation
    if get_origin(annotation) is list:
        (annotation,) = get_args(annotation) or (None,)
    return annotation in (str, int)


class PlainParam:
    """A parameter's coercion: ``None`` and plain values here, anything else through Typer's (built
    on first need, so that a run whose values are all plain never imports Pydantic)."""

    def __init__(self, descriptor, build) -> None:
        self.descriptor = descriptor
        self.plain = _is_plain(descriptor)
        self._build = build
        self._typer = None

    def _plain_value(self, value: Any) -> Any:
        annotation, info = self.descriptor.annotation, self.descriptor.parameter_info
        if get_origin(annotation) is not list:
            return _plain_item(annotation, value, info)
        if not isinstance(value, (list, tuple)):
            return _NOT_PLAIN
        (item_type,) = get_args(annotation)
        items = [_plain_item(item_type, item, info) for item in value]
        return _NOT_PLAIN if _NOT_PLAIN in items else items

    def coerce(self, value: Any, param, ctx) -> Any:
        if value is None:            # as typer._coercion.RuntimeParam.coerce
            return () if param.multiple or param.nargs == -1 else None
        plain = self._plain_value(value) if self.plain else _NOT_PLAIN
        if plain is not _NOT_PLAIN:
            return plain
        if self._typer is None:
            self._typer = self._build(self.descriptor)
        return self._typer.coerce(value, param=param, ctx=ctx)


def install() -> None:
    """Route kb's plain parameters around Pydantic (a no-op on a Typer without ``get_runtime_param``)."""
    from typer import core

    parameter = getattr(core, "_TyperParameter", None)
    build = getattr(core, "build_runtime_param", None)
    if parameter is None or build is None or not hasattr(parameter, "get_runtime_param"):
        return

    def get_runtime_param(self):
        if self._runtime_param is None:
            self._runtime_param = PlainParam(self.type_descriptor, build)
        return self._runtime_param

    parameter.get_runtime_param = get_runtime_param
