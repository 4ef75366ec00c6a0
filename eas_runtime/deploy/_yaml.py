"""YAML output in the style of the checked-in manifests: block style, indented lists, short lists
of scalars in flow style, and strings that YAML would read as something else ("0", "on",
"null", "1.5") double-quoted."""
from __future__ import annotations

from typing import Any, Iterable

import yaml

_RESOLVER = yaml.resolver.Resolver()
_STR = "tag:yaml.org,2002:str"


class _Dumper(yaml.SafeDumper):
    def increase_indent(self, flow: bool = False, indentless: bool = False):
        return super().increase_indent(flow, False)


def _str(dumper: yaml.SafeDumper, value: str):
    plain_tag = _RESOLVER.resolve(yaml.ScalarNode, value, (True, False))
    style = '"' if plain_tag != _STR or value == "" else None
    return dumper.represent_scalar(_STR, value, style=style)


def _list(dumper: yaml.SafeDumper, value: list):
    scalars = all(isinstance(v, (str, int, float)) for v in value)
    short = sum(len(str(v)) + 4 for v in value) < 80
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value,
                                     flow_style=bool(value) and scalars and short)


_Dumper.add_representer(str, _str)
_Dumper.add_representer(list, _list)
_Dumper.add_representer(tuple, _list)


def dump(doc: Any) -> str:
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=4096,
                     allow_unicode=True)


def dump_all(docs: Iterable[Any]) -> str:
    """Documents separated by ``---``."""
    return "---\n".join(dump(doc) for doc in docs)
