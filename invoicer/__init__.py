"""invoicer: a finished job in, the right invoice out on every platform, exactly once."""
__version__ = "0.1.0"
