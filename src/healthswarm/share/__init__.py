"""Trusted sharing: STIX 2.1 export/import, sanitising, leak check, TLP 2.0 / PAP, signatures, TAXII 2.1."""
