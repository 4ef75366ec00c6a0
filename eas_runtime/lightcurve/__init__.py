"""Light curves: the :class:`LightCurve` model, file formats and the transit-search QC rule."""
from ._common import FormatError, read_metadata_cfg
from .formats import FORMATS, detect_format, read_lightcurve, write_lightcurve
from .model import LightCurve
from .qc import period_outcome

__all__ = [
    "FORMATS",
    "FormatError",
    "LightCurve",
    "detect_format",
    "period_outcome",
    "read_lightcurve",
    "read_metadata_cfg",
    "write_lightcurve",
]
