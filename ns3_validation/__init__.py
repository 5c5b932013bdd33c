"""Packet-level validation of cpnjax in NS-3 (the PyPI package `ns3`). Depends on cpnjax; cpnjax
never imports this package. Every NS-3 run happens in its own worker process."""
