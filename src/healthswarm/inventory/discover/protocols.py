"""What an observed connection is, in the inventory's protocol vocabulary (`model.FLOW_PROTOCOLS`).

A sensor says what it can: Suricata's `app_proto` / Zeek's `service` when it recognised the
application protocol, always the transport and the server port. The inventory declares flows as
`protocol` (+ optional `port`). `classify` turns an observation into the inventory's word; `compatible`
says whether an observed connection satisfies a declared flow (same port when the flow names one,
else the same or a compatible protocol: FHIR and WADO ride on HTTPS, HL7 v2 on plain TCP).
"""

from __future__ import annotations

# server port → protocol (IANA and the healthcare conventions: 104/11112 DICOM, 2575 HL7 MLLP)
PORTS: dict[int, str] = {
    20: "ftp", 21: "ftp", 22: "ssh", 23: "telnet", 25: "smtp", 53: "dns", 80: "http", 88: "kerberos",
    104: "dicom", 123: "ntp", 137: "smb", 139: "smb", 161: "snmp", 162: "snmp", 389: "ldap", 443: "https",
    445: "smb", 465: "smtp", 502: "modbus", 514: "syslog", 587: "smtp", 636: "ldap", 989: "ftp", 990: "ftp",
    1433: "sql", 1521: "sql", 1883: "mqtt", 2575: "hl7v2", 3268: "ldap", 3269: "ldap", 3306: "sql",
    3389: "rdp", 5432: "sql", 5900: "vnc", 5901: "vnc", 6514: "syslog", 8080: "http", 8443: "https",
    8883: "mqtt", 11112: "dicom", 47808: "bacnet", 500: "vpn", 4500: "vpn", 1194: "vpn", 51820: "vpn",
}

# sensor application protocol names (Suricata app_proto, Zeek service, our parsers) → protocol
APPS: dict[str, str] = {
    "http": "http", "http2": "https", "tls": "https", "ssl": "https", "quic": "https", "smb": "smb",
    "dcerpc": "smb", "dce_rpc": "smb", "ntlm": "smb", "krb5": "kerberos", "kerberos": "kerberos",
    "ldap": "ldap", "dns": "dns", "smtp": "smtp", "ftp": "ftp", "ftp-data": "ftp", "ssh": "ssh",
    "rdp": "rdp", "vnc": "vnc", "telnet": "telnet", "snmp": "snmp", "ntp": "ntp", "mqtt": "mqtt",
    "modbus": "modbus", "bacnet": "bacnet", "syslog": "syslog", "dicom": "dicom", "hl7": "hl7v2",
    "hl7v2": "hl7v2", "fhir": "fhir", "mysql": "sql", "postgresql": "sql", "tds": "sql", "ike": "vpn",
    "openvpn": "vpn", "wireguard": "vpn", "sftp": "sftp", "dhcp": "udp",
}

# declared protocols a connection of the observed protocol can be (HTTPS carries FHIR, WADO, VPN portals)
_COMPATIBLE: dict[str, frozenset[str]] = {
    "https": frozenset({"https", "fhir", "wado", "vpn", "http", "tcp"}),
    "http": frozenset({"http", "fhir", "wado", "https", "tcp"}),
    "tcp": frozenset({"tcp", "hl7v2", "dicom", "x12", "sql", "mqtt", "modbus"}),
    "udp": frozenset({"udp", "syslog", "snmp", "ntp", "dns", "bacnet", "vpn"}),
    "smb": frozenset({"smb", "tcp"}),
    "ssh": frozenset({"ssh", "sftp", "tcp"}),
}

EPHEMERAL = 32768  # ports at or above it are clients' (Linux starts there, Windows at 49152)


def classify(transport: str | None, port: int | None, app: str | None) -> str:
    """The inventory protocol of a connection: the sensor's application protocol, else the port's, else
    the transport."""
    if app:
        name = APPS.get(app.lower())
        if name is not None and name not in ("tcp", "udp"):
            if name == "http" and port is not None and PORTS.get(port) == "https":
                return "https"  # HTTP seen on an HTTPS port: a TLS-inspecting sensor or proxy decrypted it
            return name
    if port is not None and (name := PORTS.get(port)) is not None:
        return name
    return "udp" if (transport or "").lower() == "udp" else "tcp"


def compatible(observed: str, declared: str) -> bool:
    """Whether a connection classified `observed` can be the declared protocol `declared`."""
    if observed == declared:
        return True
    return declared in _COMPATIBLE.get(observed, frozenset())


def satisfies(observed_protocol: str, observed_port: int | None, declared_protocol: str,
              declared_port: int | None) -> bool:
    """Whether an observed connection is the declared flow: the port decides when the flow names one."""
    if declared_port is not None and observed_port is not None:
        return declared_port == observed_port
    return compatible(observed_protocol, declared_protocol)
