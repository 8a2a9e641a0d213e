"""Serve time: photo bytes → faces → ranked matches → card. Knows nothing of Telegram or of how catalogs are built."""
