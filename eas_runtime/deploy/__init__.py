"""Deployment on Knative: from the service descriptors to a running cluster.

- :mod:`.descriptor`: ``functions/<task_type>/func.yaml`` and ``platform.yaml``, validated;
- :mod:`.generate`: the Knative Services, task Triggers, kustomizations and Containerfiles they
  give (``eas deploy generate``, ``just generate``), and the freshness check;
- :mod:`.routing`: one Trigger and one Service per task type;
- :mod:`.kustomize`: the overlays rendered without kubectl;
- :mod:`.plan`, :mod:`.steps`, :mod:`.images`: ``just images``/``deploy``/``undeploy``/``logs``/
  ``invoke`` as plans of kn, kubectl and docker/podman commands, printed (dry run) or run;
- :mod:`.status`: Knative Service status through the ``kubernetes`` client
  (:func:`knative_service_status`, ``eas cluster status``);
- :mod:`.storage_init`: ``eas storage init``, the storage Job's command.
"""
from .status import ClusterUnavailable, knative_service_status

__all__ = ["ClusterUnavailable", "knative_service_status"]
