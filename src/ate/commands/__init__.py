"""Operator commands that wire several layers together (config, store, venue clients, the simulator) for one
action, and so sit beside ``cli.py`` at the top of the layering rather than inside any one layer.

``cli.py`` only registers them; their logic stays in the layers below (``ate.risk``, ``ate.venues``, ``ate.data``).
"""
