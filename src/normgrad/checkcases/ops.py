"""Check cases for the course's other layers (affine, relu, conv, pool, dropout, losses...)."""

from __future__ import annotations

from normgrad.checkcases import CheckCase

CASES: list[CheckCase] = []
