"""``just images``: the shared base image and one image per science function, with docker or
podman, tagged ``<registry>/<name>:<tag>``.

The base image (``functions/Containerfile.base``) is built from a staged context holding only
``pyproject.toml``, ``README.md``, ``constraints.txt`` (eas_runtime/deploy/lock.py) and
``eas_runtime/`` (so no build sends the whole repository,
``.git`` and ``.eas`` included). Each function's image (``functions/<task_type>/Containerfile``)
is built from its own folder with ``BASE_IMAGE`` set to the base just built, and MinIO's
(``storage/Containerfile.minio``) from the commit the tests run. eas-control,
eas-index, eas-storage-adapter and the storage init Job run the base image itself.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Sequence

from .descriptor import Descriptor, load_all, service_name
from .steps import Command, Step, cmd

ENGINES = ("docker", "podman")
BASE_CONTAINERFILE = "functions/Containerfile.base"
#: The object store's image: MinIO built from the commit the tests run (devservers.MINIO_VERSION).
MINIO_CONTAINERFILE = "storage/Containerfile.minio"
MINIO_IMAGE = "eas-minio"
CONTEXT_DIR = ".eas/build/base-context"
CONTEXT_FILES = ("pyproject.toml", "README.md", "constraints.txt", "eas_runtime")


class EngineError(RuntimeError):
    """No container engine that works; the message says what was tried."""


def find_engine(preferred: str | None = None, probe: bool = True) -> str:
    """The first of ``preferred`` (or docker, podman) that is installed and, with ``probe``,
    whose engine answers ``<engine> info``."""
    tried = []
    for engine in ([preferred] if preferred else list(ENGINES)):
        if shutil.which(engine) is None:
            tried.append(f"{engine}: not installed")
            continue
        if not probe:
            return engine
        try:
            result = subprocess.run([engine, "info"], capture_output=True, text=True,
                                    timeout=30)
        except (OSError, subprocess.TimeoutExpired) as exc:
            tried.append(f"{engine}: `{engine} info` failed: {exc}")
            continue
        if result.returncode == 0:
            return engine
        detail = (result.stderr or result.stdout).strip().splitlines()
        tried.append(f"{engine}: installed, but its engine does not answer"
                     f"{': ' + detail[-1] if detail else ''}")
    raise EngineError("no working container engine (" + "; ".join(tried) + "). Start the "
                      "Docker daemon or install podman, then run `just images` again.")


def image(registry: str, name: str, tag: str) -> str:
    return f"{registry.rstrip('/')}/{name}:{tag}"


def _functions(root: Path, only: Sequence[str]) -> list[Descriptor]:
    functions = [d for d in load_all(root) if d.is_function]
    if not only:
        return functions
    names = {d.name: d for d in functions}
    chosen = []
    for item in only:
        desc = names.get(item) or names.get(service_name(item))
        if desc is None:
            raise ValueError(f"--only {item!r}: no science function of that name or task type "
                             f"(known: {', '.join(sorted(names))})")
        chosen.append(desc)
    return chosen


def images_plan(root: Path, registry: str, tag: str, engine: str, only: Sequence[str] = (),
                push: bool = False, kind_cluster: str | None = None) -> list[Step]:
    """Stage the base context, build the base, build each (chosen) function, then push or load
    the images into a kind cluster when asked."""
    base = image(registry, "eas-base", tag)
    stage = (f"rm -rf {CONTEXT_DIR} && mkdir -p {CONTEXT_DIR} && "
             f"cp -R {' '.join(CONTEXT_FILES)} {CONTEXT_DIR}/ && "
             f"find {CONTEXT_DIR} -name __pycache__ -prune -exec rm -rf {{}} +")
    steps = [Step(f"stage the base image's build context ({', '.join(CONTEXT_FILES)})",
                  (cmd("sh", "-c", stage),)),
             Step(f"base image {base} (eas-control, eas-index, eas-storage-adapter and the "
                  "storage init Job run it)",
                  (cmd(engine, "build", "-f", BASE_CONTAINERFILE, "-t", base, CONTEXT_DIR),))]
    refs = [base]
    if not only:
        from eas_runtime.devservers import MINIO_VERSION
        ref = image(registry, MINIO_IMAGE, tag)
        refs.append(ref)
        steps.append(Step(f"MinIO image {ref} (storage/, MinIO at {MINIO_VERSION}, as the tests run it)", (cmd(
            engine, "build", "-f", MINIO_CONTAINERFILE, "--build-arg", f"MINIO_VERSION={MINIO_VERSION}",
            "-t", ref, "storage"),)))
    for desc in _functions(root, only):
        ref = image(registry, desc.name, tag)
        refs.append(ref)
        steps.append(Step(f"image of {desc.name} ({desc.folder}/ only)", (cmd(
            engine, "build", "-f", f"{desc.folder}/Containerfile", "--build-arg",
            f"BASE_IMAGE={base}", "-t", ref, str(desc.folder)),)))
    if push:
        steps.append(Step(f"push {len(refs)} images", tuple(cmd(engine, "push", r)
                                                            for r in refs)))
    if kind_cluster:
        steps.append(Step(f"load the images into the kind cluster {kind_cluster}",
                          (Command(("kind", "load", "docker-image", *refs, "--name",
                                    kind_cluster)),)))
    return steps
