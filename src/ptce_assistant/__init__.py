"""ptce-assistant: a grounded, cited assistant over the RTES study on PTCE and local authorities."""

__version__ = "0.1.0"
