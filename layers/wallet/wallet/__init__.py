"""The shared `wallet` package, in three wings: money (the money path and its store), catalogue (games_config, the
game page) and operator (the CLI, audit, reports); bootstrap wires settings into clients.

Shipped to every Lambda as a layer (layers/wallet), and installed locally as the `wallet` operator CLI.
"""
