"""DreamTree store: the service behind the DreamTree career workbook."""

__version__ = "0.3.0"
