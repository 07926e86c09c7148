"""The wallet: the Games Server's use case and the operator's, over one store (built in wallet.bootstrap)."""

from __future__ import annotations

from wallet.money.games_server import GamesServerBilling
from wallet.money.operator_moves import OperatorMoves


class Wallet(GamesServerBilling, OperatorMoves):
    """POST /do (GamesServerBilling) and the operator's moves (OperatorMoves), sharing one Mover."""
