"""Log sources (Criteo files, synthetic generator) and the replay that publishes events.

Imports only `streaming.events` (and its errors) of the rest of the project.
"""
