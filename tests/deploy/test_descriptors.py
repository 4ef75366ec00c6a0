"""The descriptor format: what it accepts, what it rejects and how it says so."""
from __future__ import annotations

from pathlib import Path

import pytest

from eas_runtime.deploy.descriptor import (
    DescriptorError,
    derived_delivery,
    iso_duration,
    load_all,
    load_function,
    load_platform,
    parse_quantity,
)

from .conftest import REPO, add_function

VERIFY = (REPO / "functions" / "verify" / "func.yaml").read_text()


def test_repository_descriptors_load():
    descs = {d.name: d for d in load_all(REPO)}
    assert {"eas-control", "eas-index", "eas-storage-adapter"} <= set(descs)
    assert descs["eas-verify"].task_types == ("verify",)
    assert descs["eas-verify"].args == ("--target", "handle", "--source",
                                        "functions/verify/main.py", "--signature-type", "http")
    assert descs["eas-control"].min_scale == descs["eas-index"].min_scale == 1
    assert descs["eas-index"].visibility == "public"
    assert descs["eas-storage-adapter"].secret_env == (("EAS_ADAPTER_TOKEN", "eas-adapter",
                                                        "token"),)
    for desc in descs.values():
        if desc.is_function:
            assert (desc.min_scale, desc.concurrency) == (0, 1)


def test_null_is_a_task_type_not_a_missing_value():
    """YAML reads an unquoted null as None; descriptors read it as the task type 'null'."""
    null = load_function(REPO / "functions" / "null" / "func.yaml", REPO)
    assert null.task_types == ("null",) and null.name == "eas-null"


def _broken(repo: Path, old: str, new: str) -> str:
    folder = repo / "functions" / "verify"
    text = VERIFY.replace(old, new)
    assert text != VERIFY, f"{old!r} not in the verify descriptor"
    (folder / "func.yaml").write_text(text)
    with pytest.raises(DescriptorError) as info:
        load_function(folder / "func.yaml", repo)
    return str(info.value)


@pytest.mark.parametrize("old,new,words", [
    ("concurrency: 1", "concurrency: 4", ["concurrency", "one task per replica"]),
    ("scale: {min: 0, max: 10}", "scale: {min: 1, max: 10}", ["scale.min", "scale to zero"]),
    ("scale: {min: 0, max: 10}", "scale: {min: 0, max: 0}", ["scale.max", "unlimited"]),
    ("scale: {min: 0, max: 10}", "scale: {mni: 0, max: 10}", ["scale.mni", "did you mean 'min'"]),
    ("memory: 512Mi}", "memory: 512MB}", ["resources.requests.memory", "'512MB'", "quantity"]),
    ('cpu: "250m"', 'cpu: "2"', ["resources.requests.cpu", "exceeds the limit 1"]),
    ("gpu: 0", "gpu: -1", ["resources.gpu", ">= 0"]),
    ("gpu: 0", "gpus: 0", ["resources.gpus", "did you mean 'gpu'"]),
    ("timeout_s: 300", "timeout_s: 86401", ["timeout_s", "<= 86400"]),
    ("timeout_s: 300", "timeout_s: 0", ["timeout_s", ">= 1"]),
    ("task_types: [verify]", "task_types: [Verify]", ["task_types[0]", "lowercase"]),
    ("task_types: [verify]", "task_types: [other]", ["must include 'verify'"]),
    ("task_types: [verify]", "task_types: []", ["task_types", "non-empty"]),
    ("name: eas-verify", "name: eas-verfy", ["name", "'eas-verify'"]),
    ("name: eas-verify", "name: eas_verify", ["name", "DNS-1035"]),
    ("source: functions/verify/main.py", "source: functions/null/main.py",
     ["source", "its own folder"]),
    ("target: handle", "target: handler", ["target", "no top-level 'handler'"]),
    ("timeout_s: 300", "timeout_s: 300\nretries: 2", ["retries", "unknown field"]),
    ("timeout_s: 300", "timeout_s: 300\ndelivery: {retry: 2, backoffPolicy: exponentail}",
     ["delivery.backoffPolicy", "'exponentail'"]),
    ("timeout_s: 300", "timeout_s: 300\ndelivery: {retry: 2, backoffDelay: 2s}",
     ["delivery.backoffDelay", "ISO-8601"]),
])
def test_broken_descriptor_is_rejected(repo, old, new, words):
    message = _broken(repo, old, new)
    assert message.startswith("functions/verify/func.yaml: ")
    for word in words:
        assert word in message, message


def test_every_problem_is_reported_at_once(repo):
    message = _broken(repo, "concurrency: 1", "concurrency: 2\ngpu: 1")
    assert "concurrency" in message and "gpu: unknown field" in message


def test_booleans_stay_strings(repo):
    message = _broken(repo, "concurrency: 1", "concurrency: on")
    assert "'on'" in message


def test_duplicate_keys_are_rejected(repo):
    message = _broken(repo, "concurrency: 1", "concurrency: 1\nconcurrency: 1")
    assert "duplicate key 'concurrency'" in message


def test_two_functions_cannot_serve_one_task_type(repo):
    add_function(repo, "verify_twice", VERIFY.replace("name: eas-verify", "name: eas-verify-twice")
                 .replace("task_types: [verify]", "task_types: [verify_twice, verify]")
                 .replace("functions/verify/", "functions/verify_twice/"))
    with pytest.raises(DescriptorError, match="'verify' is also served by functions/"):
        load_all(repo)


def test_platform_descriptors_are_checked(tmp_path):
    path = tmp_path / "platform.yaml"
    path.write_text("- {name: eas-control, component: control, command: [eas, serve, control],"
                    " resources: {requests: {cpu: 1, memory: 1Gi}, limits: {cpu: 1, memory: 1Gi}},"
                    " scale: {min: 0, max: 2}, secret_env: {EAS_X: nokey}}\n")
    with pytest.raises(DescriptorError) as info:
        load_platform(path)
    text = str(info.value)
    assert "scale.min: 0: eas-control is always on" in text
    assert "secret_env.EAS_X: 'nokey' must be 'secret-name/key'" in text


def test_quantities_and_durations():
    assert parse_quantity("500m") == 0.5 and parse_quantity("2Gi") == 2 * 2 ** 30
    assert parse_quantity("1e3") == 1000 and parse_quantity("1.5") == 1.5
    with pytest.raises(ValueError):
        parse_quantity("2GB")
    assert [iso_duration(s) for s in (600, 90, 3600, 3661, 0)] == \
        ["PT10M", "PT1M30S", "PT1H", "PT1H1M1S", "PT0S"]


def test_long_running_functions_get_their_own_delivery():
    descs = {d.name: d for d in load_all(REPO)}
    assert derived_delivery(descs["eas-verify"]) is None          # the Broker's applies
    assert derived_delivery(descs["eas-transit-search-bls-reference"]) == {
        "retry": 3, "backoffPolicy": "exponential", "backoffDelay": "PT2S", "timeout": "PT10M"}
