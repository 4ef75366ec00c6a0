"""Offline validation of the project's Kubernetes and Knative manifests.

    python -m eas_runtime.manifests knative broker_config storage

checks every YAML document under the given files and folders:

- Knative kinds (Service, Broker, Trigger, PingSource, SinkBinding, ContainerSource) against the
  OpenAPI schemas of their CRDs in ``eas_runtime/schemas/knative``, made strict: an object schema
  with ``properties`` is closed unless it says ``x-kubernetes-preserve-unknown-fields``, so a
  misspelt field is an error, as Kubernetes' strict field validation would make it;
- core kinds (Namespace, Secret, ConfigMap, Service, StatefulSet, NetworkPolicy, ...) structurally;
- ``metadata.name`` (a DNS label; DNS-1035 for Knative Services) and label syntax;
- the rules this project adds where Knative's admission webhooks admit what it does not want
  (``admission``, ``serving_rules``); Knative's own rules are checked by running Knative's code
  on the same manifests (knative/validate, ``just knative-validate``), not restated here;
- references between documents (``_references``);
- ``kustomization.yaml`` files: every file they list exists, every manifest is listed.

``validate_paths`` returns :class:`Problem` records; :func:`main` prints them and exits 1 if
there are any.
"""
from __future__ import annotations

import argparse
import copy
import difflib
import re
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Sequence

import jsonschema
import yaml

from .admission import (Finding, check_broker, check_trigger, delivery_spec, key_path, parse_go_duration,
                         parse_iso8601_duration, unknown_key)
from .core_schemas import CORE_SCHEMAS, OBJECT_META, check_core
from .kustomize import KUSTOMIZATION_NAMES, check_kustomizations, patch_files
from .references import check_references, group_kind
from .serving_rules import check_service

__all__ = ["Problem", "ManifestError", "load_documents", "validate_documents", "validate_paths",
           "validate_document", "delivery_spec", "parse_iso8601_duration",
           "parse_go_duration", "crd_schemas", "strict_schema", "main"]

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas" / "knative"
YAML_SUFFIXES = (".yaml", ".yml")
DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
LABEL_NAME = re.compile(r"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                        r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
QUANTITY_PATTERN = (r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|"
                    r"([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$")
#: The project's rules beyond the schemas, for what Knative's webhooks admit (the rest of
#: admission is Knative's own code: knative/validate).
ADMISSION = {
    ("serving.knative.dev", "Service"): check_service,
    ("eventing.knative.dev", "Trigger"): check_trigger,
    ("eventing.knative.dev", "Broker"): check_broker,
}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a manifest: where (file, document index from 0, kind/name, field
    path) and what, with the offending value."""
    file: str
    index: int
    resource: str
    path: str
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        where = f"{self.file}[{self.index}]" + (f" {self.resource}" if self.resource else "")
        field = f" {self.path}:" if self.path else ":"
        return f"{self.severity}: {where}{field} {self.message}"


class ManifestError(ValueError):
    """A manifest file cannot be read as YAML mappings."""


# --------------------------------------------------------------------------- loading
class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys, as kubectl does."""


def _mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    keys = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in keys:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        keys.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def _yaml_files(paths: Iterable[str | Path]) -> tuple[list[Path], list[Path]]:
    """(existing YAML files under ``paths`` in a stable order, paths that do not exist)."""
    files: list[Path] = []
    missing: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file()
                            and (p.suffix in YAML_SUFFIXES or p.name in KUSTOMIZATION_NAMES)
                            and not any(part.startswith(".") for part in p.relative_to(path).parts))
        elif path.is_file():
            files.append(path)
        else:
            missing.append(path)
    return list(dict.fromkeys(files)), missing


def _read(path: Path) -> list[tuple[int, object]]:
    try:
        return [(i, doc) for i, doc in enumerate(yaml.load_all(path.read_text(), _StrictLoader))
                if doc is not None]
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ManifestError(f"{path}: {exc}") from None


def load_documents(paths: Iterable[str | Path]) -> list[tuple[Path, int, dict]]:
    """Every YAML document (multi-document files too) under the given files and folders, as
    (file, index of the document in its file, document). Kustomization files and the patch
    files they name are not manifests and are left out. Raises :class:`ManifestError` on a
    missing path, invalid YAML or a document that is not a mapping."""
    files, missing = _yaml_files(paths)
    if missing:
        raise ManifestError(f"no such file or directory: {', '.join(map(str, missing))}")
    patches = patch_files([f for f in files if f.name in KUSTOMIZATION_NAMES])
    out = []
    for f in files:
        if f.name in KUSTOMIZATION_NAMES or f.resolve() in patches:
            continue
        for i, doc in _read(f):
            if not isinstance(doc, dict):
                raise ManifestError(f"{f}[{i}]: a manifest must be a mapping, got {doc!r}")
            out.append((f, i, doc))
    return out


# --------------------------------------------------------------------------- schemas
def strict_schema(schema: dict) -> dict:
    """A copy of a CRD's structural schema for jsonschema: objects with ``properties`` and no
    ``additionalProperties`` are closed unless ``x-kubernetes-preserve-unknown-fields`` is set,
    and the ``x-kubernetes-*`` keys are dropped."""
    preserve = schema.get("x-kubernetes-preserve-unknown-fields") is True
    out = {k: v for k, v in schema.items() if not k.startswith("x-kubernetes-")}
    if "properties" in out:
        out["properties"] = {k: strict_schema(v) for k, v in out["properties"].items()}
        if not preserve and "additionalProperties" not in out:
            out["additionalProperties"] = False
    for key in ("items", "additionalProperties", "not"):
        if isinstance(out.get(key), dict):
            out[key] = strict_schema(out[key])
    for key in ("anyOf", "allOf", "oneOf"):
        if isinstance(out.get(key), list):
            out[key] = [strict_schema(s) for s in out[key]]
    return out


def _strict_crd_schema(raw: dict) -> dict:
    schema = strict_schema(raw)
    # Kubernetes adds these to every kind; ObjectMeta is checked strictly.
    schema["properties"] = {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                            **schema.get("properties", {}), "metadata": OBJECT_META}
    schema["required"] = ["apiVersion", "kind", "metadata"]
    return schema


@lru_cache(maxsize=1)
def crd_schemas() -> dict[tuple[str, str], dict[str, dict]]:
    """(group, kind) -> {served version: strict schema}, from the CRDs in SCHEMA_DIR."""
    out: dict[tuple[str, str], dict[str, dict]] = {}
    for path in sorted(SCHEMA_DIR.glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            if not isinstance(crd, dict) or crd.get("kind") != "CustomResourceDefinition":
                continue
            spec = crd["spec"]
            versions = out.setdefault((spec["group"], spec["names"]["kind"]), {})
            for version in spec["versions"]:
                if version.get("served"):
                    versions[version["name"]] = _strict_crd_schema(
                        copy.deepcopy(version["schema"]["openAPIV3Schema"]))
    return out


@lru_cache(maxsize=None)
def _validator(api_version: str, kind: str) -> jsonschema.Draft7Validator | None:
    group, _, version = api_version.rpartition("/")
    schema = (crd_schemas().get((group, kind), {}).get(version)
              or CORE_SCHEMAS.get((api_version, kind)))
    return jsonschema.Draft7Validator(schema) if schema else None


def _schema_findings(validator: jsonschema.Draft7Validator, doc: dict) -> list[Finding]:
    out = []
    for error in sorted(validator.iter_errors(doc), key=lambda e: list(map(str, e.absolute_path))):
        path = ""
        for part in error.absolute_path:
            path = f"{path}[{part}]" if isinstance(part, int) else key_path(path, str(part))
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = sorted(error.schema.get("properties", {}))
            for key in sorted(set(error.instance) - set(allowed), key=str):
                out.append(unknown_key(path, key, allowed))
        elif error.validator == "pattern" and error.validator_value == QUANTITY_PATTERN:
            out.append(Finding(path, f"{error.instance!r} is not a Kubernetes quantity "
                               "(examples: 500m, 1, 2Gi, 512Mi)"))
        else:
            out.append(Finding(path, f"{error.message}"))
    return out


# --------------------------------------------------------------------------- one document
def validate_document(doc: dict) -> list[Finding]:
    """Schema, name and admission checks of one manifest (no cross-references)."""
    api, kind = doc.get("apiVersion"), doc.get("kind")
    if not isinstance(api, str) or not isinstance(kind, str) or not api or not kind:
        return [Finding("", f"every manifest needs apiVersion and kind, got apiVersion={api!r} "
                        f"kind={kind!r}")]
    out = _metadata_findings(doc)
    validator = _validator(api, kind)
    gk = group_kind(doc)
    rules = ADMISSION.get(gk, lambda d: [])(doc)
    if gk[0] in ("", "apps", "networking.k8s.io"):
        rules += check_core(doc)
    if validator is None:
        out += _unknown_kind(api, kind)
    else:
        # Where an admission rule explains a field, its message replaces the schema's.
        explained = {f.path for f in rules}
        out += [f for f in _schema_findings(validator, doc) if f.path not in explained]
    return list(dict.fromkeys(out + rules))


def _unknown_kind(api: str, kind: str) -> list[Finding]:
    group, _, version = api.rpartition("/")
    known = crd_schemas()
    if (group, kind) in known:
        served = ", ".join(f"{group}/{v}" for v in known[(group, kind)])
        return [Finding("apiVersion", f"{api!r} is not a served version of {kind} "
                        f"(served: {served})")]
    kinds = sorted({k for g, k in known if g == group} | {k for a, k in CORE_SCHEMAS if a == api})
    close = difflib.get_close_matches(kind, kinds, n=1, cutoff=0.75)
    if close:
        return [Finding("kind", f"unknown kind {kind!r} in {api}; did you mean {close[0]!r}? "
                        f"(known: {', '.join(kinds)})")]
    return [Finding("kind", f"no schema for {api} {kind}: only metadata was checked", "warning")]


def _metadata_findings(doc: dict) -> list[Finding]:
    meta = doc.get("metadata")
    if not isinstance(meta, dict):
        return [Finding("metadata", f"is required (with a name), got {meta!r}")]
    out = []
    name = meta.get("name")
    knative_service = group_kind(doc) == ("serving.knative.dev", "Service")
    pattern, rule = ((DNS1035_LABEL, "DNS-1035 label: lowercase letters, digits and '-', "
                      "starting with a letter") if knative_service else
                     (DNS1123_LABEL, "DNS-1123 label: lowercase letters, digits and '-', "
                      "starting and ending with a letter or digit"))
    if not isinstance(name, str) or not pattern.fullmatch(name) or len(name) > 63:
        out.append(Finding("metadata.name", f"{name!r} is not a valid name: a {rule}, "
                           "at most 63 characters"))
    if meta.get("namespace") is not None and not DNS1123_LABEL.fullmatch(str(meta["namespace"])):
        out.append(Finding("metadata.namespace", f"{meta['namespace']!r} is not a DNS-1123 label"))
    templates = [("metadata.labels", meta.get("labels"))]
    spec = doc.get("spec")
    template = spec.get("template") if isinstance(spec, dict) else None
    if isinstance(template, dict) and isinstance(template.get("metadata"), dict):
        templates.append(("spec.template.metadata.labels", template["metadata"].get("labels")))
    for path, labels in templates:
        for key, value in (labels or {}).items() if isinstance(labels, dict) else ():
            if not isinstance(key, str) or not LABEL_NAME.fullmatch(key):
                out.append(Finding(f"{path}[{key}]", f"label name {key!r} is not valid"))
            if isinstance(value, str) and (len(value) > 63 or not LABEL_VALUE.fullmatch(value)):
                out.append(Finding(f"{path}[{key}]", f"label value {value!r} is not valid: at "
                                   "most 63 of A-Z a-z 0-9 - _ . and alphanumeric at both ends"))
    return out


# --------------------------------------------------------------------------- sets of documents
def _resource(doc: dict) -> str:
    meta = doc.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    return f"{doc.get('kind', '?')}/{name}" if name else str(doc.get("kind", ""))


def validate_documents(entries: Sequence[tuple[Path, int, dict]]) -> list[Problem]:
    """Every document on its own, then the references between them."""
    problems = []
    for path, index, doc in entries:
        problems += [Problem(str(path), index, _resource(doc), f.path, f.message, f.severity)
                     for f in validate_document(doc)]
    for position, f in check_references([doc for _, _, doc in entries]):
        path, index, doc = entries[position]
        problems.append(Problem(str(path), index, _resource(doc), f.path, f.message, f.severity))
    return problems


def validate_paths(paths: Iterable[str | Path]) -> list[Problem]:
    """All checks over every manifest under ``paths`` (files or folders)."""
    files, missing = _yaml_files(paths)
    problems = [Problem(str(p), 0, "", "", "no such file or directory") for p in missing]
    kfiles = [f for f in files if f.name in KUSTOMIZATION_NAMES]
    patches = patch_files(kfiles)
    manifests = [f for f in files
                 if f.name not in KUSTOMIZATION_NAMES and f.resolve() not in patches]
    problems += [Problem(str(f.file), 0, "Kustomization" if f.file.name in KUSTOMIZATION_NAMES
                         else "", f.field, f.message, f.severity)
                 for f in check_kustomizations(kfiles, manifests)]
    entries = []
    for f in manifests:
        try:
            docs = _read(f)
        except ManifestError as exc:
            problems.append(Problem(str(f), 0, "", "", f"invalid YAML: {exc}"))
            continue
        for i, doc in docs:
            if isinstance(doc, dict):
                entries.append((f, i, doc))
            else:
                problems.append(Problem(str(f), i, "", "",
                                        f"a manifest must be a mapping, got {doc!r}"))
    return problems + validate_documents(entries)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eas_runtime.manifests",
                                     description="Validate Kubernetes/Knative manifests offline.")
    parser.add_argument("paths", nargs="*", default=["knative", "broker_config", "storage"],
                        help="files or folders (default: knative broker_config storage)")
    parser.add_argument("--allow-warnings", action="store_true",
                        help="exit 0 when there are warnings but no errors")
    args = parser.parse_args(argv)
    problems = validate_paths(args.paths)
    for problem in problems:
        print(problem)
    errors = sum(p.severity == "error" for p in problems)
    print(f"{errors} error(s), {len(problems) - errors} warning(s) in {', '.join(args.paths)}",
          file=sys.stderr)
    print("(the schemas and the project's own rules; Knative's admission rules are checked by "
          "running Knative's code: just knative-validate, which needs Go)", file=sys.stderr)
    failing = errors if args.allow_warnings else len(problems)
    return 1 if failing else 0

