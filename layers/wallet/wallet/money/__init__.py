"""The money path: protocol, sign, sessions, amounts, ledger, the store, and the use cases that move money."""
