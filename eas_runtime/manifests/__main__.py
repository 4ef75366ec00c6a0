"""``python -m eas_runtime.manifests PATH...``: validate manifests offline (see the package)."""
import sys

from eas_runtime.manifests import main

sys.exit(main())
