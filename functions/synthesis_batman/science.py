"""The ``synthesis_batman`` task's science: the batman model in eas_runtime/batman_synthesis.py
(shared with ``synthesis_psls``, whose image does not ship this folder), re-exported here where
every task keeps its science (``functions.<task_type>.science``)."""
from eas_runtime.batman_synthesis import (AU_M, DEFAULTS, IGNORED_SPECS, JUPITER_RADIUS_M,
                                          LIMB_DARKENING, REFERENCE_CADENCE_S, SUN_RADIUS_M,
                                          synthesize, transit_model)

__all__ = ["AU_M", "DEFAULTS", "IGNORED_SPECS", "JUPITER_RADIUS_M", "LIMB_DARKENING",
           "REFERENCE_CADENCE_S", "SUN_RADIUS_M", "synthesize", "transit_model"]
