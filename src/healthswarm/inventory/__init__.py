"""The infrastructure model: load and validate it, resolve addresses, match advisories to it."""

from healthswarm.inventory.addresses import AddressIndex
from healthswarm.inventory.loader import load_inventory

__all__ = ["AddressIndex", "load_inventory"]
