"""mailpulse: composition roots, CLI and the embedded runtime."""
