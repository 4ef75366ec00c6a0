"""What a kustomization.yaml names: every local file it lists must exist, and every manifest in
its folder should be listed (or ``kubectl apply -k`` silently skips it)."""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import yaml

KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
_LISTS = ("resources", "components", "crds", "bases", "patchesStrategicMerge")


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
