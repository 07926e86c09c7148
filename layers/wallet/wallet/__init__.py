"""The shared `wallet` package: the seamless-wallet domain, its DynamoDB repository, the provider's sign and sessions.

Shipped to every Lambda as a layer (layers/wallet), and installed locally as the `wallet` operator CLI.
"""
