"""PLATO EAS runtime: the library every function image installs."""
__version__ = "0.1.0"
