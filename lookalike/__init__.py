"""lookalike: which celebrity does this face look like? The engine; Telegram lives in ``lookalike.telegram``."""
