"""The demo's orchestration: the components as supervised `mmn` processes, and a live view."""
