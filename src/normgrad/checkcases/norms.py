"""Check cases for the normalizations beyond batch norm (layer, group, instance, RMS...)."""

from __future__ import annotations

from normgrad.checkcases import CheckCase

CASES: list[CheckCase] = []
