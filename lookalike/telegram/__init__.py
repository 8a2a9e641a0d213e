"""The Telegram side of lookalike: handlers, texts, keyboards, limits, feedback, metrics. Knows nothing of dlib."""
