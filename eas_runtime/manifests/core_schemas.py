"""Minimal JSON schemas for the core Kubernetes kinds this project ships.

Structural only: the fields the project uses, closed against misspellings, with the value types
Kubernetes expects (for instance env values must be strings, so an unquoted YAML ``on`` is
caught). ``OBJECT_META`` is also used for ``metadata`` of the Knative kinds.
"""
from __future__ import annotations

from .admission import Finding

STRING = {"type": "string"}
INTEGER = {"type": "integer"}
BOOLEAN = {"type": "boolean"}
OPEN = {"type": "object"}
STRING_MAP = {"type": "object", "additionalProperties": STRING}
STRING_LIST = {"type": "array", "items": STRING}
INT_OR_STRING = {"anyOf": [INTEGER, STRING]}


def closed(properties: dict, required: tuple[str, ...] = ()) -> dict:
    schema = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = list(required)
    return schema


OBJECT_META = closed({
    "name": STRING, "generateName": STRING, "namespace": STRING, "labels": STRING_MAP,
    "annotations": STRING_MAP, "finalizers": STRING_LIST, "ownerReferences": {"type": "array"},
    "uid": STRING, "resourceVersion": STRING, "generation": INTEGER, "creationTimestamp": {},
    "deletionTimestamp": {}, "deletionGracePeriodSeconds": INTEGER, "managedFields": {},
    "selfLink": STRING,
})

ENV_VAR = closed({"name": STRING, "value": STRING, "valueFrom": OPEN}, ("name",))
PORT = closed({"name": STRING, "containerPort": INTEGER, "protocol": STRING, "hostPort": INTEGER,
               "hostIP": STRING}, ("containerPort",))
CONTAINER = closed({
    "name": STRING, "image": STRING, "command": STRING_LIST, "args": STRING_LIST,
    "workingDir": STRING, "ports": {"type": "array", "items": PORT},
    "env": {"type": "array", "items": ENV_VAR}, "envFrom": {"type": "array"},
    "resources": closed({"requests": {"type": "object", "additionalProperties": INT_OR_STRING},
                         "limits": {"type": "object", "additionalProperties": INT_OR_STRING},
                         "claims": {"type": "array"}}),
    "volumeMounts": {"type": "array", "items": closed({
        "name": STRING, "mountPath": STRING, "readOnly": BOOLEAN, "subPath": STRING,
        "subPathExpr": STRING, "mountPropagation": STRING, "recursiveReadOnly": STRING},
        ("name", "mountPath"))},
    "readinessProbe": OPEN, "livenessProbe": OPEN, "startupProbe": OPEN, "lifecycle": OPEN,
    "securityContext": OPEN, "imagePullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]},
    "terminationMessagePath": STRING, "terminationMessagePolicy": STRING,
    "stdin": BOOLEAN, "tty": BOOLEAN,
}, ("name", "image"))
POD_SPEC = closed({
    "containers": {"type": "array", "items": CONTAINER, "minItems": 1},
    "initContainers": {"type": "array", "items": CONTAINER}, "volumes": {"type": "array"},
    "serviceAccountName": STRING, "automountServiceAccountToken": BOOLEAN,
    "securityContext": OPEN, "nodeSelector": STRING_MAP, "tolerations": {"type": "array"},
    "affinity": OPEN, "restartPolicy": STRING, "terminationGracePeriodSeconds": INTEGER,
    "imagePullSecrets": {"type": "array"}, "hostname": STRING, "subdomain": STRING,
    "priorityClassName": STRING, "enableServiceLinks": BOOLEAN,
    "topologySpreadConstraints": {"type": "array"},
}, ("containers",))
POD_TEMPLATE = closed({"metadata": OBJECT_META, "spec": POD_SPEC}, ("spec",))
SELECTOR = closed({"matchLabels": STRING_MAP, "matchExpressions": {"type": "array"}})
LABEL_SELECTOR = closed({"matchLabels": STRING_MAP, "matchExpressions": {"type": "array", "items": closed({
    "key": STRING, "operator": {"enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
    "values": STRING_LIST}, ("key", "operator"))}})
_POLICY_PEER = closed({"podSelector": LABEL_SELECTOR, "namespaceSelector": LABEL_SELECTOR,
                       "ipBlock": closed({"cidr": STRING, "except": STRING_LIST}, ("cidr",))})
_POLICY_PORT = closed({"port": INT_OR_STRING, "endPort": INTEGER,
                       "protocol": {"enum": ["TCP", "UDP", "SCTP"]}})
_WORKLOAD = {"replicas": INTEGER, "selector": SELECTOR, "template": POD_TEMPLATE,
             "minReadySeconds": INTEGER, "revisionHistoryLimit": INTEGER}


def _top(spec: dict | None = None, **extra: dict) -> dict:
    properties = {"apiVersion": STRING, "kind": STRING, "metadata": OBJECT_META, **extra}
    if spec is not None:
        properties["spec"] = spec
    return closed(properties, ("apiVersion", "kind", "metadata"))


#: (apiVersion, kind) -> schema of the whole document.
CORE_SCHEMAS: dict[tuple[str, str], dict] = {
    ("v1", "Namespace"): _top(closed({"finalizers": STRING_LIST})),
    ("v1", "Secret"): _top(None, type=STRING, data=STRING_MAP, stringData=STRING_MAP,
                           immutable=BOOLEAN),
    ("v1", "ConfigMap"): _top(None, data=STRING_MAP, binaryData=STRING_MAP, immutable=BOOLEAN),
    ("v1", "ServiceAccount"): _top(None, secrets={"type": "array"},
                                   imagePullSecrets={"type": "array"},
                                   automountServiceAccountToken=BOOLEAN),
    ("v1", "PersistentVolumeClaim"): _top(OPEN),
    ("v1", "Service"): _top(closed({
        "type": {"enum": ["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"]},
        "selector": STRING_MAP, "clusterIP": STRING, "clusterIPs": STRING_LIST,
        "externalName": STRING, "sessionAffinity": STRING, "publishNotReadyAddresses": BOOLEAN,
        "ports": {"type": "array", "items": closed({
            "name": STRING, "port": INTEGER, "targetPort": INT_OR_STRING, "protocol": STRING,
            "nodePort": INTEGER, "appProtocol": STRING}, ("port",))},
    })),
    ("apps/v1", "StatefulSet"): _top(closed({
        **_WORKLOAD, "serviceName": STRING, "podManagementPolicy": STRING,
        "updateStrategy": OPEN, "persistentVolumeClaimRetentionPolicy": OPEN, "ordinals": OPEN,
        "volumeClaimTemplates": {"type": "array", "items": closed(
            {"metadata": OBJECT_META, "spec": OPEN, "apiVersion": STRING, "kind": STRING})},
    }, ("selector", "template"))),
    ("apps/v1", "Deployment"): _top(closed({
        **_WORKLOAD, "strategy": OPEN, "progressDeadlineSeconds": INTEGER, "paused": BOOLEAN,
    }, ("selector", "template"))),
    ("networking.k8s.io/v1", "NetworkPolicy"): _top(closed({
        "podSelector": LABEL_SELECTOR,
        "policyTypes": {"type": "array", "items": {"enum": ["Ingress", "Egress"]}},
        "ingress": {"type": "array", "items": closed({
            "from": {"type": "array", "items": _POLICY_PEER},
            "ports": {"type": "array", "items": _POLICY_PORT}})},
        "egress": {"type": "array", "items": closed({
            "to": {"type": "array", "items": _POLICY_PEER},
            "ports": {"type": "array", "items": _POLICY_PORT}})},
    }, ("podSelector",))),
    ("batch/v1", "Job"): _top(closed({
        "template": POD_TEMPLATE, "backoffLimit": INTEGER, "activeDeadlineSeconds": INTEGER,
        "ttlSecondsAfterFinished": INTEGER, "completions": INTEGER, "parallelism": INTEGER,
        "selector": SELECTOR, "manualSelector": BOOLEAN, "suspend": BOOLEAN,
        "completionMode": {"enum": ["NonIndexed", "Indexed"]}, "backoffLimitPerIndex": INTEGER,
        "maxFailedIndexes": INTEGER, "podFailurePolicy": OPEN, "podReplacementPolicy": STRING,
        "successPolicy": OPEN, "managedBy": STRING,
    }, ("template",))),
    ("rbac.authorization.k8s.io/v1", "Role"): _top(None, rules={"type": "array", "items": closed({
        "apiGroups": STRING_LIST, "resources": STRING_LIST, "verbs": STRING_LIST,
        "resourceNames": STRING_LIST, "nonResourceURLs": STRING_LIST}, ("verbs",))}),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): _top(
        None, roleRef=closed({"apiGroup": STRING, "kind": {"enum": ["Role", "ClusterRole"]}, "name": STRING},
                             ("apiGroup", "kind", "name")),
        subjects={"type": "array", "items": closed({"kind": {"enum": ["ServiceAccount", "User", "Group"]},
                                                    "name": STRING, "namespace": STRING, "apiGroup": STRING},
                                                   ("kind", "name"))}),
}


def check_core(doc: dict) -> list[Finding]:
    """What the schemas above cannot say: a workload's selector must match its pod labels,
    and its containers must declare the volumes they mount; a NetworkPolicy's selectors and
    peers must be ones the API server admits."""
    out: list[Finding] = []
    if doc.get("kind") == "NetworkPolicy":
        out += _check_network_policy(doc.get("spec") or {})
    if doc.get("kind") in ("StatefulSet", "Deployment"):
        spec = doc.get("spec") or {}
        wanted = (spec.get("selector") or {}).get("matchLabels") or {}
        labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        for key, value in wanted.items():
            if labels.get(key) != value:
                out.append(Finding("spec.template.metadata.labels", f"selector wants {key}="
                                   f"{value!r} but the pod template has {labels.get(key)!r}"))
        pod = (spec.get("template") or {}).get("spec") or {}
        names = {v.get("name") for v in pod.get("volumes") or [] if isinstance(v, dict)}
        names |= {((c or {}).get("metadata") or {}).get("name")
                  for c in spec.get("volumeClaimTemplates") or [] if isinstance(c, dict)}
        for i, container in enumerate(pod.get("containers") or []):
            for j, mount in enumerate((container or {}).get("volumeMounts") or []):
                if isinstance(mount, dict) and mount.get("name") not in names:
                    out.append(Finding(f"spec.template.spec.containers[{i}].volumeMounts[{j}].name",
                                       f"volume {mount.get('name')!r} is not defined (defined: "
                                       f"{', '.join(sorted(n for n in names if n)) or 'none'})"))
    return out


def _check_selector(selector, path: str) -> list[Finding]:
    out = []
    for i, expr in enumerate((selector or {}).get("matchExpressions") or [] if isinstance(selector, dict) else []):
        if not isinstance(expr, dict):
            continue
        values, operator = expr.get("values") or [], expr.get("operator")
        if operator in ("In", "NotIn") and not values:
            out.append(Finding(f"{path}.matchExpressions[{i}].values",
                               f"operator {operator} needs at least one value"))
        if operator in ("Exists", "DoesNotExist") and values:
            out.append(Finding(f"{path}.matchExpressions[{i}].values",
                               f"operator {operator} takes no values, got {values!r}"))
    return out


def _check_network_policy(spec: dict) -> list[Finding]:
    """The API server's validation of a NetworkPolicy beyond its schema."""
    out = _check_selector(spec.get("podSelector"), "spec.podSelector")
    types = spec.get("policyTypes") or []
    for direction, key, peers in (("Ingress", "ingress", "from"), ("Egress", "egress", "to")):
        rules = spec.get(key) or []
        if rules and types and direction not in types:
            out.append(Finding(f"spec.{key}", f"rules are given but policyTypes {types!r} lacks "
                               f"{direction!r}, so they are ignored"))
        for i, rule in enumerate(rules if isinstance(rules, list) else []):
            for j, peer in enumerate((rule or {}).get(peers) or [] if isinstance(rule, dict) else []):
                where = f"spec.{key}[{i}].{peers}[{j}]"
                if not isinstance(peer, dict):
                    continue
                if not peer:
                    out.append(Finding(where, "a peer needs podSelector, namespaceSelector or ipBlock"))
                if "ipBlock" in peer and len(peer) > 1:
                    out.append(Finding(where, "ipBlock cannot be combined with a selector"))
                for name in ("podSelector", "namespaceSelector"):
                    out += _check_selector(peer.get(name), f"{where}.{name}")
    return out
