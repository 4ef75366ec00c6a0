"""Local Knative Serving: the Services of ``knative/`` as replica processes on one machine.

See :mod:`eas_runtime.serving.local` for the dispatcher contract used by the embedded broker.
"""
from .local import (ColdStartFailed, DispatchError, LocalServing, NoCapacity, ReplicaLost,
                    RequestTimeout, ServiceNotFound, ServingStopped)
from .spec import ServiceSpec, ServiceSpecError, load_specs, spec_from_document

__all__ = [
    "ColdStartFailed", "DispatchError", "LocalServing", "NoCapacity", "ReplicaLost",
    "RequestTimeout", "ServiceNotFound", "ServiceSpec", "ServiceSpecError", "ServingStopped",
    "load_specs", "spec_from_document",
]
