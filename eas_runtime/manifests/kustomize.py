"""kustomize, the project's one renderer and checker of kustomizations.

**Rendering.** :func:`build` renders the project's kustomizations without kubectl, so that the
deploy plan (and ``just deploy-dry-run`` in CI) needs no binary.

Supported, with kustomize's meaning: ``resources`` (files and folders with a kustomization),
``namespace``, ``patches`` holding JSON 6902 operations (``path`` or inline ``patch``, with a
``target`` of group/version/kind/name/namespace/labelSelector/annotationSelector; ``name`` is a
regular expression as in kustomize), and ``images`` (name -> newName/newTag/digest). Anything
else (strategic-merge patches, generators, name prefixes, ...) raises :class:`KustomizeError`
naming the field, rather than rendering something different from ``kubectl kustomize``;
``tests/deploy`` compares the two when kubectl is installed, and with kustomize's own Go API
(knative/validate).

**Checking.** What a kustomization.yaml names: every local file it lists must exist, and every
manifest in its folder should be listed, or ``kubectl apply -k`` silently skips it
(:func:`check_kustomizations`).
"""
from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, Iterable, NamedTuple

import yaml


KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
_LISTS = ("resources", "components", "crds", "bases", "patchesStrategicMerge")
SUPPORTED = ("apiVersion", "kind", "namespace", "resources", "patches", "images")
#: Kinds that have no namespace (kustomize leaves them alone).
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
                  "PersistentVolume", "StorageClass", "PriorityClass"}


class KustomizeError(ValueError):
    """A kustomization this renderer cannot render (or a patch that does not apply)."""


def _kustomization(folder: Path) -> Path:
    for name in KUSTOMIZATION_NAMES:
        if (folder / name).is_file():
            return folder / name
    raise KustomizeError(f"{folder}: no kustomization.yaml")


def build(folder: str | Path) -> list[dict]:
    """The documents ``kubectl kustomize <folder>`` renders (in resource order)."""
    folder = Path(folder)
    kfile = _kustomization(folder)
    spec = yaml.safe_load(kfile.read_text()) or {}
    if not isinstance(spec, dict):
        raise KustomizeError(f"{kfile}: must be a mapping")
    unknown = sorted(set(spec) - set(SUPPORTED))
    if unknown:
        raise KustomizeError(f"{kfile}: {', '.join(unknown)} not supported here (supported: "
                             f"{', '.join(SUPPORTED)}); use `kubectl kustomize`")
    docs: list[dict] = []
    for entry in spec.get("resources") or []:
        target = folder / entry
        if target.is_dir():
            docs += build(target)
        else:
            docs += [d for d in yaml.safe_load_all(target.read_text()) if isinstance(d, dict)]
    if spec.get("namespace"):
        for doc in docs:
            if doc.get("kind") not in CLUSTER_SCOPED:
                doc.setdefault("metadata", {})["namespace"] = spec["namespace"]
    for i, patch in enumerate(spec.get("patches") or []):
        _apply_patch(folder, kfile, i, patch, docs)
    for image in spec.get("images") or []:
        set_images(docs, lambda ref, image=image: _image_override(ref, image))
    return docs


# --------------------------------------------------------------------------- patches
def _apply_patch(folder: Path, kfile: Path, index: int, entry: Any, docs: list[dict]) -> None:
    where = f"{kfile}: patches[{index}]"
    if not isinstance(entry, dict) or ("path" in entry) == ("patch" in entry):
        raise KustomizeError(f"{where}: needs exactly one of 'path' and 'patch'")
    text = (folder / entry["path"]).read_text() if "path" in entry else entry["patch"]
    ops = yaml.safe_load(text)
    if not isinstance(ops, list):
        raise KustomizeError(f"{where}: only JSON 6902 patches (a list of operations) are "
                             "supported here, not strategic-merge patches")
    target = entry.get("target")
    if not isinstance(target, dict):
        raise KustomizeError(f"{where}: a JSON 6902 patch needs a 'target'")
    for doc in docs:
        if matches(target, doc):
            try:
                json_patch(doc, ops)
            except KustomizeError as exc:
                name = (doc.get("metadata") or {}).get("name")
                raise KustomizeError(f"{where} on {doc.get('kind')}/{name}: {exc}") from None


def _selector_matches(selector: str, values: dict) -> bool:
    for term in (t.strip() for t in selector.split(",") if t.strip()):
        if "!=" in term:
            key, _, want = (s.strip() for s in term.partition("!="))
            if values.get(key) == want:
                return False
        elif "=" in term:
            key, _, want = (s.strip() for s in term.replace("==", "=").partition("="))
            if values.get(key) != want:
                return False
        elif term.startswith("!"):
            if term[1:].strip() in values:
                return False
        elif term not in values:
            return False
    return True


def matches(target: dict, doc: dict) -> bool:
    """Whether a patch ``target`` selects ``doc``."""
    api = str(doc.get("apiVersion", ""))
    group, _, version = api.rpartition("/")
    meta = doc.get("metadata") or {}
    checks = [("group", group), ("version", version), ("kind", doc.get("kind")),
              ("namespace", meta.get("namespace"))]
    for key, value in checks:
        if key in target and target[key] != value:
            return False
    if "name" in target and not re.fullmatch(str(target["name"]), str(meta.get("name", ""))):
        return False
    if "labelSelector" in target and not _selector_matches(target["labelSelector"],
                                                           meta.get("labels") or {}):
        return False
    return "annotationSelector" not in target or _selector_matches(
        target["annotationSelector"], meta.get("annotations") or {})


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise KustomizeError(f"JSON pointer {path!r} must start with '/'")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, parts: list[str], path: str) -> Any:
    node = doc
    for part in parts[:-1]:
        try:
            node = node[int(part)] if isinstance(node, list) else node[part]
        except (KeyError, IndexError, ValueError, TypeError):
            raise KustomizeError(f"path {path!r} does not exist") from None
    return node


def json_patch(doc: dict, ops: Iterable[dict]) -> None:
    """Apply RFC 6902 operations (add, remove, replace, test) to ``doc`` in place."""
    for op in ops:
        kind, path = op.get("op"), op.get("path", "")
        parts = _pointer(path)
        if not parts:
            raise KustomizeError(f"{kind} of the whole document is not supported")
        parent, last = _parent(doc, parts, path), parts[-1]
        if kind in ("add", "replace"):
            value = copy.deepcopy(op.get("value"))
            if isinstance(parent, list):
                index = len(parent) if last == "-" else int(last)
                if kind == "add":
                    parent.insert(index, value)
                elif index < len(parent):
                    parent[index] = value
                else:
                    raise KustomizeError(f"replace: {path!r} does not exist")
            elif isinstance(parent, dict):
                if kind == "replace" and last not in parent:
                    raise KustomizeError(f"replace: {path!r} does not exist")
                parent[last] = value
            else:
                raise KustomizeError(f"{kind}: {path!r} is inside a scalar")
        elif kind == "remove":
            try:
                del parent[int(last) if isinstance(parent, list) else last]
            except (KeyError, IndexError, ValueError, TypeError):
                raise KustomizeError(f"remove: {path!r} does not exist") from None
        elif kind == "test":
            current = parent[int(last)] if isinstance(parent, list) else parent.get(last)
            if current != op.get("value"):
                raise KustomizeError(f"test: {path!r} is {current!r}, not {op.get('value')!r}")
        else:
            raise KustomizeError(f"operation {kind!r} is not supported (add, remove, replace, "
                                 "test)")


# --------------------------------------------------------------------------- images
def split_image(ref: str) -> tuple[str, str | None, str | None]:
    """``registry:5000/a/b:tag@sha256:x`` -> (``registry:5000/a/b``, ``tag``, ``sha256:x``)."""
    name, _, digest = ref.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    tag = None
    if colon > slash:
        name, tag = name[:colon], name[colon + 1:]
    return name, tag, digest or None


def join_image(name: str, tag: str | None, digest: str | None) -> str:
    return name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


def _image_override(ref: str, image: dict) -> str:
    name, tag, digest = split_image(ref)
    if name != image.get("name"):
        return ref
    if "digest" in image:
        return join_image(image.get("newName", name), None, image["digest"])
    return join_image(image.get("newName", name), image.get("newTag", tag), digest)


def set_images(docs: Iterable[dict], change) -> None:
    """Replace every container image ``ref`` (in containers and initContainers, at any depth)
    with ``change(ref)``."""
    stack: list[Any] = list(docs)
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key in ("containers", "initContainers"):
                for container in node.get(key) or []:
                    if isinstance(container, dict) and isinstance(container.get("image"), str):
                        container["image"] = change(container["image"])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


# --------------------------------------------------------------------------- checking


class FileFinding(NamedTuple):
    file: Path
    field: str
    message: str
    severity: str = "error"


def kustomization_refs(path: Path) -> tuple[dict[str, Path], set[Path]]:
    """({field entry: resolved path} of every local file a kustomization names, patch files).
    Raises ``ValueError`` when the file is not a YAML mapping."""
    try:
        doc = yaml.safe_load(path.read_text()) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: a kustomization must be a mapping")
    refs: dict[str, Path] = {}
    patches: set[Path] = set()
    for field in _LISTS:
        for i, entry in enumerate(doc.get(field) or []):
            if isinstance(entry, str) and "\n" not in entry and "://" not in entry \
                    and not entry.startswith(("github.com/", "git@")):
                refs[f"{field}[{i}]"] = (path.parent / entry).resolve()
                if field == "patchesStrategicMerge":
                    patches.add(refs[f"{field}[{i}]"])
    for field in ("patches", "patchesJson6902"):
        for i, entry in enumerate(doc.get(field) or []):
            if isinstance(entry, dict) and isinstance(entry.get("path"), str):
                refs[f"{field}[{i}].path"] = (path.parent / entry["path"]).resolve()
                patches.add(refs[f"{field}[{i}].path"])
    return refs, patches


def patch_files(kfiles: list[Path]) -> set[Path]:
    """Files that kustomizations use as patches: partial documents, not manifests."""
    out: set[Path] = set()
    for kfile in kfiles:
        try:
            out |= kustomization_refs(kfile)[1]
        except ValueError:
            pass  # reported by check_kustomizations
    return out


def check_kustomizations(kfiles: list[Path], manifests: list[Path]) -> list[FileFinding]:
    out, listed = [], set()
    for kfile in kfiles:
        try:
            refs, _ = kustomization_refs(kfile)
        except ValueError as exc:
            out.append(FileFinding(kfile, "", str(exc)))
            continue
        for field, target in refs.items():
            listed.add(target)
            if not target.exists():
                out.append(FileFinding(kfile, field, f"{target} does not exist"))
            elif target.is_dir() and not any((target / n).exists() for n in KUSTOMIZATION_NAMES):
                out.append(FileFinding(kfile, field,
                                       f"folder {target} holds no kustomization.yaml"))
    roots = [k.resolve().parent for k in kfiles]
    for manifest in manifests:
        resolved = manifest.resolve()
        if resolved not in listed and any(root in resolved.parents for root in roots):
            out.append(FileFinding(manifest, "", "not listed in any kustomization.yaml, so "
                                   "`kubectl apply -k` skips it", "warning"))
    return out
