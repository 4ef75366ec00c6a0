"""Static checks of the Containerfiles (no engine needed): the base image is pinned Python 3.11
slim with the project installed and a non-root user; every function's image is built FROM the
base, copies only its own folder, and runs functions-framework on its main.py as a non-root
user, exactly as its Knative Service does."""
from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest

from eas_runtime.deploy.descriptor import load_all
from eas_runtime.deploy.generate import service_document
from eas_runtime.manifests import kustomize

from .conftest import POD_SOURCES, pod_specs

REPO = Path(__file__).resolve().parents[2]
BASE = REPO / "functions" / "Containerfile.base"
FUNCTIONS = [d for d in load_all(REPO) if d.is_function]


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out, pending = [], ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, args = line.partition(" ")
        out.append((keyword.upper(), args.strip()))
    assert not pending, f"{path}: ends inside a continued line"
    return out


def arg_defaults(ins: list[tuple[str, str]]) -> dict[str, str]:
    return dict(a.split("=", 1) for k, a in ins if k == "ARG" and "=" in a)


def resolve(text: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), text)


def last(ins, keyword) -> str:
    found = [a for k, a in ins if k == keyword]
    assert found, f"no {keyword}"
    return found[-1]


def non_root_user(user: str) -> None:
    uid = user.split(":")[0]
    assert uid.isdigit(), f"USER {user}: numeric, so that runAsNonRoot can verify it"
    assert int(uid) != 0


def check_python_pin(image: str) -> None:
    """python:3.11.<patch>-slim[-<debian>] or a digest; never latest."""
    name, _, digest = image.partition("@")
    repo, _, tag = name.rpartition(":") if ":" in name.split("/")[-1] else (name, "", "")
    assert repo.endswith("python"), image
    assert tag != "latest" and (digest.startswith("sha256:") or re.fullmatch(
        r"3\.11\.\d+-slim(-\w+)?", tag)), f"{image}: pin Python 3.11 slim by patch tag or digest"


#: Third-party images and how exact their tags must be: the release's every component (Python
#: and Go x.y.z, PostgreSQL major.minor), so that two builds of one commit get one image; any
#: other image only by digest. The project's own images (registry.invalid/...) are built here.
PINNED_TAGS = {
    "docker.io/library/python": r"3\.11\.\d+-slim-\w+",
    "docker.io/library/golang": r"\d+\.\d+\.\d+-\w+",
    "docker.io/library/postgres": r"\d+\.\d+-\w+",
}
#: The project's own images: built by `just images` (dev.local/... locally), pushed to a registry.
OWN_IMAGES = ("registry.invalid/plato-eas/", "dev.local/plato-eas/")


def check_pinned(image: str) -> None:
    """A third-party image is named by a digest, or by a tag of :data:`PINNED_TAGS`."""
    name, _, digest = image.partition("@")
    if digest:
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", digest), f"{image}: malformed digest"
        return
    repo, _, tag = name.rpartition(":") if ":" in name.split("/")[-1] else (name, "", "")
    assert repo in PINNED_TAGS, f"{image}: pin it by digest (repo@sha256:...)"
    assert re.fullmatch(PINNED_TAGS[repo], tag), (
        f"{image}: the tag must name a patch release ({PINNED_TAGS[repo]}), or use a digest")


def _every_image() -> list[tuple[str, str]]:
    """(where, image) for every FROM of every Containerfile (build arguments at their defaults,
    earlier stages left out) and every container image of a pod the manifests make, but the
    project's own."""
    out = []
    for path in sorted(REPO.glob("**/Containerfile*")):
        if {".eas", ".git", "node_modules"} & set(path.relative_to(REPO).parts):
            continue
        ins = instructions(path)
        args, stages = arg_defaults(ins), set()
        for keyword, arguments in ins:
            if keyword == "FROM":
                words = arguments.split()
                image = resolve(words[0], args)
                if image not in stages:
                    out.append((str(path.relative_to(REPO)), image))
                if len(words) == 3 and words[1].upper() == "AS":
                    stages.add(words[2])
    for source in POD_SOURCES:                  # as deployed: the overlays rendered
        for doc in kustomize.build(REPO / source):
            for name, pod in pod_specs(doc):
                out += [(f"{source}: {name}", c.get("image", ""))
                        for c in [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]]
    return [(where, image) for where, image in out if not image.startswith(OWN_IMAGES)]


def test_every_third_party_image_is_pinned():
    images = _every_image()
    assert {image.split(":")[0] for _, image in images} >= set(PINNED_TAGS), images
    for where, image in images:
        try:
            check_pinned(image)
        except AssertionError as exc:
            raise AssertionError(f"{where}: {exc}") from None


def test_the_pin_check_refuses_floating_tags():
    for floating in ("docker.io/library/golang:1.26-bookworm", "docker.io/library/debian:bookworm-slim",
                     "docker.io/library/python:3.11-slim", "docker.io/library/postgres:16",
                     "docker.io/library/postgres:latest", "quay.io/minio/minio:latest",
                     "docker.io/library/python@sha256:abc"):
        with pytest.raises(AssertionError):
            check_pinned(floating)
    check_pinned("docker.io/library/golang:1.26.8-bookworm")
    check_pinned("docker.io/library/debian@sha256:" + "a" * 64)


# --------------------------------------------------------------------------- base image
def test_base_image_is_pinned_python_311_slim():
    ins = instructions(BASE)
    args = arg_defaults(ins)
    froms = [resolve(a.split()[0], args) for k, a in ins if k == "FROM"]
    assert froms, "no FROM"
    for image in froms:
        check_python_pin(image)


def test_base_image_installs_the_project_as_a_non_root_user_in_app():
    ins = instructions(BASE)
    final = ins[max(i for i, (k, _) in enumerate(ins) if k == "FROM"):]
    non_root_user(last(final, "USER"))
    uid = last(final, "USER").split(":")[0]
    assert any(k == "RUN" and f"--uid {uid}" in a and "useradd" in a for k, a in final)
    assert last(final, "WORKDIR") == "/app"
    env = " ".join(a for k, a in final if k == "ENV")
    assert "PYTHONPATH=/app" in env
    installs = [a for k, a in final if k == "RUN" and "pip install" in a]
    assert any("plato-eas[postgres]" in a for a in installs), installs
    # the project goes in before the user switch; afterwards only the BLS kernels' warm-up
    # runs (as that user, so that it writes the user's numba cache)
    user_at = max(i for i, (k, _) in enumerate(final) if k == "USER")
    assert [a for k, a in final[user_at:] if k == "RUN"] == [
        'python -c "from eas_runtime.bls import warm_up; warm_up()"']


def test_base_build_context_holds_only_what_the_install_needs():
    from eas_runtime.deploy.images import CONTEXT_FILES
    copies = [a.split() for k, a in instructions(BASE) if k == "COPY" and "--from" not in a]
    sources = {part.rstrip("/") for args in copies for part in args[:-1]}
    assert sources <= set(CONTEXT_FILES), sources
    for name in CONTEXT_FILES:
        assert (REPO / name).exists()


# --------------------------------------------------------------------------- functions
def test_every_function_has_a_containerfile():
    assert FUNCTIONS
    missing = [d.folder for d in FUNCTIONS if not (REPO / d.folder / "Containerfile").is_file()]
    assert not missing, f"run `just generate`: {missing}"


@pytest.mark.parametrize("desc", FUNCTIONS, ids=[d.name for d in FUNCTIONS])
def test_function_image(desc):
    path = REPO / desc.folder / "Containerfile"
    ins = instructions(path)
    froms = [a for k, a in ins if k == "FROM"]
    assert froms == ["${BASE_IMAGE}"], "one stage, FROM the shared base image"
    assert "/eas-base:" in arg_defaults(ins)["BASE_IMAGE"]
    # the build context is the function's folder: only "." (or names inside it) is copied,
    # to its place in the repository layout
    for keyword, args in ins:
        assert keyword != "ADD", "ADD fetches URLs and unpacks archives: use COPY"
        if keyword == "COPY":
            parts = [p for p in shlex.split(args) if not p.startswith("--")]
            assert all(not p.startswith(("/", "..")) for p in parts[:-1]), args
            assert parts[-1].rstrip("/") == f"/app/{desc.folder}"
    assert any(k == "RUN" and f"-r /app/{desc.folder}/requirements.txt" in a for k, a in ins)
    non_root_user(last(ins, "USER"))
    command = json.loads(last(ins, "CMD"))
    assert command == ["functions-framework", "--target", "handle", "--source",
                       f"{desc.folder}/main.py", "--signature-type", "http"]
    container = service_document(desc)["spec"]["template"]["spec"]["containers"][0]
    assert command == container["command"] + container["args"]


def test_checks_reject_broken_containerfiles(tmp_path):
    """The rules above catch what they are meant to catch."""
    with pytest.raises(AssertionError):
        check_python_pin("python:latest")
    with pytest.raises(AssertionError):
        check_python_pin("python:3.12.1-slim")
    with pytest.raises(AssertionError):
        check_python_pin("python:3.11")
    check_python_pin("python@sha256:" + "0" * 64)
    check_python_pin("docker.io/library/python:3.11.11-slim-bookworm")
    with pytest.raises(AssertionError):
        non_root_user("root")
    with pytest.raises(AssertionError):
        non_root_user("0:0")
    broken = tmp_path / "Containerfile"
    broken.write_text("FROM python:3.11\nRUN a \\\n")
    with pytest.raises(AssertionError, match="continued line"):
        instructions(broken)
