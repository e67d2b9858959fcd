"""jwpipe: JWST imaging calibration at scale.

Kept import-light on purpose: every workflow job pays this import, so nothing heavy
(numpy, astropy, asdf) is imported here.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
