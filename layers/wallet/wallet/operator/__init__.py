"""The operator's side: the `wallet` CLI, the audit and the reports."""
