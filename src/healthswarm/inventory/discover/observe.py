"""The observed picture, built one event at a time: endpoints, the flows between them, and what they announce.

`Discovery.observe(event)` is the whole interface: the batch command feeds it stored events, the agent
feeds it events as they arrive, and the picture is the same. Memory is bounded by what is distinct,
not by how much traffic passed:

- a flow is aggregated on (client, server, server port, transport): the client's ephemeral port is
  dropped, so a month of a workstation opening thousands of HTTPS connections to the EHR is one flow
  with a connection count, first and last seen, and bytes;
- an endpoint (one IP address) keeps first/last seen, counts, and at most `VALUES` distinct values of
  each announcement (MAC, host names, user agents, DHCP vendor class, JA3/JA4, DICOM AE titles and
  implementation names, HL7 applications, MQTT client ids, software banners);
- past `max_flows` distinct flows (or `max_endpoints` endpoints) the least recently seen eighth is
  dropped and counted in `evicted_*`: a bound that is reported, never a silent loss.

Fingerprinting and the comparison with the inventory happen later, on the snapshot (`fingerprint`,
`diff`): the per-event path does dictionary updates only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from healthswarm.inventory.discover.protocols import EPHEMERAL
from healthswarm.model import Event

VALUES = 8  # distinct values kept per announcement kind and endpoint
NAMES = 8  # host names kept per endpoint
DEFAULT_MAX_FLOWS = 4_000_000
DEFAULT_MAX_ENDPOINTS = 1_000_000

# datasets whose records are one connection each (bytes and connection counts come from these alone)
FLOW_DATASETS = frozenset({"suricata.flow", "suricata.netflow", "zeek.conn", "cicflowmeter.flow"})
DHCP_DATASETS = frozenset({"suricata.dhcp", "zeek.dhcp", "dhcp"})
_UNSPECIFIED = frozenset({"0.0.0.0", "255.255.255.255", "::", ""})


class FlowStats:
    """One aggregated flow. Slots, not a dict: a million of them must fit in a few hundred MB."""

    __slots__ = ("app", "bytes", "connections", "events", "first", "last")

    def __init__(self, ts: float) -> None:
        self.first = ts
        self.last = ts
        self.events = 0
        self.connections = 0
        self.bytes = 0
        self.app: str | None = None


class Endpoint:
    __slots__ = ("events", "first", "last", "macs", "names", "signals")

    def __init__(self, ts: float) -> None:
        self.first = ts
        self.last = ts
        self.events = 0
        self.macs: list[str] | None = None
        self.names: list[str] | None = None
        # announcement kind → {value: times seen}
        self.signals: dict[str, dict[str, int]] | None = None

    def add_signal(self, kind: str, value: str) -> None:
        signals = self.signals
        if signals is None:
            signals = self.signals = {}
        seen = signals.get(kind)
        if seen is None:
            signals[kind] = {value: 1}
        elif value in seen:
            seen[value] += 1
        elif len(seen) < VALUES:
            seen[value] = 1

    def add_name(self, name: str) -> None:
        name = name.strip().rstrip(".").lower()
        if not name:
            return
        if self.names is None:
            self.names = [name]
        elif name not in self.names and len(self.names) < NAMES:
            self.names.append(name)

    def add_mac(self, mac: str) -> None:
        mac = mac.strip().lower().replace("-", ":")
        if len(mac) != 17 or mac == "00:00:00:00:00:00" or mac == "ff:ff:ff:ff:ff:ff":
            return
        if self.macs is None:
            self.macs = [mac]
        elif mac not in self.macs and len(self.macs) < 4:
            self.macs.append(mac)


FlowKey = tuple[str, str, int | None, str]  # client, server, server port, transport


@dataclass
class Application:
    """An application seen in clinical messages without an address (an HL7 file, an interface log)."""

    kind: str  # "hl7"
    facility: str
    name: str
    first: float
    last: float
    messages: int = 0
    receivers: dict[str, int] = field(default_factory=dict)


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        value = value.strip()
        return value or None
    if isinstance(value, list) and value and isinstance(value[0], str):
        return value[0].strip() or None
    return None


class Discovery:
    """Streaming aggregates of what the network shows. Feed events with `observe`; read `flows`,
    `endpoints`, `applications` (or hand the whole object to `fingerprint` / `diff`)."""

    def __init__(self, max_flows: int = DEFAULT_MAX_FLOWS, max_endpoints: int = DEFAULT_MAX_ENDPOINTS) -> None:
        self.flows: dict[FlowKey, FlowStats] = {}
        self.endpoints: dict[str, Endpoint] = {}
        self.applications: dict[tuple[str, str, str], Application] = {}
        self.max_flows = max_flows
        self.max_endpoints = max_endpoints
        self.events = 0
        self.flow_events = 0
        self.evicted_flows = 0
        self.evicted_endpoints = 0
        self._first = float("inf")
        self._last = float("-inf")

    # -- the per-event path ------------------------------------------------------------------------
    def observe(self, event: Event) -> FlowKey | None:
        """Add one event; returns the flow key when this event created a new flow (else None).

        A flow record costs one flow-table update: endpoints' first/last seen and counts are read off
        the flows when the picture is taken (`endpoint_view`), so only events that announce something
        (DHCP, HTTP, TLS, DICOM, HL7, ...) touch the endpoint table here."""
        f = event.fields
        get = f.get
        ts = event.timestamp.timestamp()
        self.events += 1
        if ts > self._last:
            self._last = ts
        if ts < self._first:
            self._first = ts
        dataset = get("event.dataset") or get("observer.type") or ""
        if dataset in DHCP_DATASETS:  # broadcast and relayed: the client is in the payload, not the addresses
            self._dhcp(event, event.original if isinstance(event.original, dict) else {})
            return None
        src = get("source.ip")
        dst = get("destination.ip")
        new: FlowKey | None = None
        client = server = None
        if type(src) is str and type(dst) is str and src not in _UNSPECIFIED and dst not in _UNSPECIFIED:
            dport = get("destination.port")
            sport = get("source.port")
            client, server = src, dst
            # a reply seen as its own record (a DNS answer, a server-first flow): the side on a service port serves
            if type(dport) is int and type(sport) is int and dport >= EPHEMERAL and sport < 1024:
                client, server, dport = dst, src, sport
            elif type(dport) is not int:
                dport = None
            transport = get("network.transport")
            if type(transport) is not str:  # clinical application logs (DICOM, HL7, FHIR) name no transport: TCP
                transport = "tcp" if dport is not None else ""
            key = (client, server, dport, transport)
            stats = self.flows.get(key)
            if stats is None:
                stats = self.flows[key] = FlowStats(ts)
                new = key
                if len(self.flows) > self.max_flows:
                    self._evict_flows()
            elif ts > stats.last:
                stats.last = ts
            elif ts < stats.first:
                stats.first = ts
            stats.events += 1
            if dataset in FLOW_DATASETS:
                self.flow_events += 1
                stats.connections += 1
                sent = get("source.bytes")
                if type(sent) is int:
                    stats.bytes += sent
                received = get("destination.bytes")
                if type(received) is int:
                    stats.bytes += received
                original = event.original
                if type(original) is dict and ("ether" in original or "orig_l2_addr" in original):
                    self._macs(original, self._endpoint(src, ts), self._endpoint(dst, ts))
                app = get("network.protocol")  # the flow record's application protocol wins over other events'
                if type(app) is str and app not in ("failed", "unknown", ""):
                    stats.app = app
                return new
            if stats.app is None:
                app = get("network.protocol")
                if type(app) is str and app not in ("failed", "unknown", ""):
                    stats.app = app
        alone = client is None  # an event with one address counts on its endpoint; flows count their own
        self._announcements(event, dataset, self._endpoint(src, ts, alone), self._endpoint(dst, ts, alone))
        return new

    @property
    def first(self) -> float | None:
        return self._first if self._first != float("inf") else None

    @property
    def last(self) -> float | None:
        return self._last if self._last != float("-inf") else None

    def endpoint_view(self) -> dict[str, Endpoint]:
        """Every address seen: the announcing endpoints, with first/last seen and event counts from the flows."""
        view: dict[str, Endpoint] = {}
        for ip, e in self.endpoints.items():
            copy = view[ip] = Endpoint(e.first)
            copy.last, copy.events, copy.macs, copy.names, copy.signals = e.last, e.events, e.macs, e.names, e.signals
        for (client, server, _, _), s in self.flows.items():
            for ip in (client, server):
                e = view.get(ip)
                if e is None:
                    e = view[ip] = Endpoint(s.first)
                    e.last = s.last
                else:
                    if s.first < e.first:
                        e.first = s.first
                    if s.last > e.last:
                        e.last = s.last
                e.events += s.events
        return view

    def observe_many(self, events: Iterable[Event]) -> int:
        n = 0
        for event in events:
            self.observe(event)
            n += 1
        return n

    # -- announcements (what a device says about itself) -----------------------------------------------
    def _announcements(self, event: Event, dataset: str, s_end: Endpoint | None, d_end: Endpoint | None) -> None:
        f = event.fields
        get = f.get
        o = event.original if isinstance(event.original, dict) else {}
        if s_end is not None:
            if (ua := _text(get("user_agent.original"))) is not None:
                s_end.add_signal("ssh.banner" if dataset.endswith(".ssh") else "http.user_agent", ua)
            if (ja3 := _text(get("tls.client.ja3")) or _text(o.get("ja3"))) is not None:
                s_end.add_signal("tls.ja3", ja3)
            tls = o.get("tls")
            ja4 = _text(tls.get("ja4")) if isinstance(tls, dict) else _text(o.get("ja4"))
            if ja4 is not None:
                s_end.add_signal("tls.ja4", ja4)
            if (mac := _text(get("source.mac"))) is not None:
                s_end.add_mac(mac)
        if d_end is not None:
            if (sni := _text(get("tls.client.server_name"))) is not None:
                d_end.add_name(sni)
            if (ja3s := _text(get("tls.server.ja3s")) or _text(o.get("ja3s"))) is not None:
                d_end.add_signal("tls.ja3s", ja3s)
        if dataset == "dicom" or get("observer.type") == "dicom":
            self._dicom(f, o, s_end, d_end)
        elif get("observer.type") == "hl7":
            self._hl7(event, s_end)
        elif dataset in ("zeek.software", "zeek.known_services", "zeek.known_hosts", "zeek.known_devices"):
            self._zeek_known(event, dataset, o)
        elif dataset == "suricata.mqtt" and s_end is not None:
            mqtt = o.get("mqtt")
            connect = mqtt.get("connect") if isinstance(mqtt, dict) else None
            if isinstance(connect, dict) and (cid := _text(connect.get("client_id"))) is not None:
                s_end.add_signal("mqtt.client_id", cid)
        names = get("dns.question.name")
        resolved = get("dns.resolved_ip")
        if isinstance(names, str) and isinstance(resolved, list):
            for ip in resolved[:4]:
                if isinstance(ip, str) and (end := self.endpoints.get(ip)) is not None:
                    end.add_name(names)

    def _endpoint(self, ip: Any, ts: float, count: bool = False) -> Endpoint | None:
        if type(ip) is not str or ip in _UNSPECIFIED:
            return None
        end = self.endpoints.get(ip)
        if end is None:
            end = self.endpoints[ip] = Endpoint(ts)
            if len(self.endpoints) > self.max_endpoints:
                self._evict_endpoints()
        elif ts > end.last:
            end.last = ts
        elif ts < end.first:
            end.first = ts
        if count:
            end.events += 1
        return end

    def _dhcp(self, event: Event, o: dict[str, Any]) -> None:
        f = event.fields
        d = o.get("dhcp") if isinstance(o.get("dhcp"), dict) else o  # Suricata nests it, Zeek does not
        ip = None
        for key in ("assigned_ip", "assigned_addr", "client_ip", "client_addr", "requested_ip", "requested_addr"):
            value = d.get(key)
            if isinstance(value, str) and value not in _UNSPECIFIED:
                ip = value
                break
        if ip is None:
            ip = f.get("source.ip")
        end = self._endpoint(ip, event.timestamp.timestamp())
        if end is None:
            return
        if (mac := _text(f.get("source.mac")) or _text(d.get("client_mac")) or _text(d.get("mac"))) is not None:
            end.add_mac(mac)
        if (host := _text(f.get("host.hostname")) or _text(d.get("hostname")) or _text(d.get("host_name"))):
            end.add_signal("dhcp.hostname", host)
            end.add_name(host)
        for key in ("vendor_class_identifier", "vendor_class", "client_software"):
            if (vendor := _text(d.get(key))) is not None:
                end.add_signal("dhcp.vendor_class", vendor)
                break
        if (fqdn := _text(d.get("client_fqdn"))) is not None:
            end.add_name(fqdn)

    def _dicom(self, f: dict[str, Any], o: dict[str, Any], s_end: Endpoint | None, d_end: Endpoint | None) -> None:
        if s_end is not None:
            if (ae := _text(f.get("dicom.calling_ae_title"))) is not None:
                s_end.add_signal("dicom.ae_title", ae)
            version = _text(f.get("dicom.implementation_version_name")) or _text(
                o.get("implementation_version_name")) or _text(o.get("calling_impl_version"))
            if version is not None:
                s_end.add_signal("dicom.implementation_version_name", version)
            uid = _text(f.get("dicom.implementation_class_uid")) or _text(
                o.get("implementation_class_uid")) or _text(o.get("calling_impl_uid"))
            if uid is not None:
                s_end.add_signal("dicom.implementation_class_uid", uid)
        if d_end is not None:
            if (ae := _text(f.get("dicom.called_ae_title"))) is not None:
                d_end.add_signal("dicom.ae_title", ae)
            if (version := _text(o.get("called_impl_version"))) is not None:
                d_end.add_signal("dicom.implementation_version_name", version)
            if (uid := _text(o.get("called_impl_uid"))) is not None:
                d_end.add_signal("dicom.implementation_class_uid", uid)

    def _hl7(self, event: Event, s_end: Endpoint | None) -> None:
        f = event.fields
        app = _text(f.get("hl7.sending_application"))
        if app is None:
            return
        facility = _text(f.get("hl7.sending_facility")) or ""
        if s_end is not None:
            s_end.add_signal("hl7.sending_application", app)
        ts = event.timestamp.timestamp()
        key = ("hl7", facility, app)
        entry = self.applications.get(key)
        if entry is None:
            if len(self.applications) >= 10_000:
                return
            entry = self.applications[key] = Application("hl7", facility, app, ts, ts)
        entry.first, entry.last = min(entry.first, ts), max(entry.last, ts)
        entry.messages += 1
        receiver = "/".join(x for x in (_text(f.get("hl7.receiving_facility")),
                                        _text(f.get("hl7.receiving_application"))) if x)
        if receiver and (receiver in entry.receivers or len(entry.receivers) < VALUES):
            entry.receivers[receiver] = entry.receivers.get(receiver, 0) + 1

    def _zeek_known(self, event: Event, dataset: str, o: dict[str, Any]) -> None:
        ts = event.timestamp.timestamp()
        host = o.get("host") or o.get("host_ip") or o.get("ip")
        end = self._endpoint(host, ts)
        if end is None:
            return
        if dataset == "zeek.software":
            text = _text(o.get("unparsed_version")) or _text(o.get("name"))
            if text is not None:
                end.add_signal("software", text)
        elif dataset == "zeek.known_devices":
            if (mac := _text(o.get("mac"))) is not None:
                end.add_mac(mac)
            if (name := _text(o.get("dhcp_host_name"))) is not None:
                end.add_signal("dhcp.hostname", name)
                end.add_name(name)
        elif dataset == "zeek.known_services":
            port = o.get("port_num")
            if isinstance(port, int):
                service = o.get("service")
                service = service[0] if isinstance(service, list) and service else service
                end.add_signal("service", f"{o.get('port_proto') or 'tcp'}/{port}/{service or ''}")

    @staticmethod
    def _macs(o: dict[str, Any], s_end: Endpoint | None, d_end: Endpoint | None) -> None:
        ether = o.get("ether")
        if isinstance(ether, dict):
            smac, dmac = ether.get("src_mac"), ether.get("dest_mac")
        else:
            smac, dmac = o.get("orig_l2_addr"), o.get("resp_l2_addr")
        # MACs are only meaningful on the sensor's own segment; routers' MACs get filtered by count later
        if isinstance(smac, str) and s_end is not None:
            s_end.add_mac(smac)
        if isinstance(dmac, str) and d_end is not None:
            d_end.add_mac(dmac)

    # -- bounds ------------------------------------------------------------------------------------------
    def _evict_flows(self) -> None:
        flows = self.flows
        cut = max(1, len(flows) // 8)
        oldest = sorted(flows.items(), key=lambda kv: kv[1].last)[:cut]
        for key, _ in oldest:
            del flows[key]
        self.evicted_flows += len(oldest)

    def _evict_endpoints(self) -> None:
        endpoints = self.endpoints
        cut = max(1, len(endpoints) // 8)
        oldest = sorted(endpoints.items(), key=lambda kv: kv[1].last)[:cut]
        for ip, _ in oldest:
            del endpoints[ip]
        self.evicted_endpoints += len(oldest)

    # -- persistence (the agent keeps its picture across restarts) ----------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "events": self.events, "flow_events": self.flow_events, "first": self.first, "last": self.last,
            "evicted_flows": self.evicted_flows, "evicted_endpoints": self.evicted_endpoints,
            "endpoints": {ip: [e.first, e.last, e.events, e.macs, e.names, e.signals]
                          for ip, e in self.endpoints.items()},
            "flows": [[*key, s.first, s.last, s.events, s.connections, s.bytes, s.app]
                      for key, s in self.flows.items()],
            "applications": [[a.kind, a.facility, a.name, a.first, a.last, a.messages, a.receivers]
                             for a in self.applications.values()],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], max_flows: int = DEFAULT_MAX_FLOWS,
                  max_endpoints: int = DEFAULT_MAX_ENDPOINTS) -> Discovery:
        d = cls(max_flows, max_endpoints)
        d.events, d.flow_events = data.get("events", 0), data.get("flow_events", 0)
        first, last = data.get("first"), data.get("last")
        d._first = first if first is not None else float("inf")
        d._last = last if last is not None else float("-inf")
        d.evicted_flows, d.evicted_endpoints = data.get("evicted_flows", 0), data.get("evicted_endpoints", 0)
        for ip, (first, last, events, macs, names, signals) in data.get("endpoints", {}).items():
            e = d.endpoints[ip] = Endpoint(first)
            e.last, e.events, e.macs, e.names, e.signals = last, events, macs, names, signals
        for client, server, port, transport, first, last, events, connections, nbytes, app in data.get("flows", []):
            s = d.flows[(client, server, port, transport)] = FlowStats(first)
            s.last, s.events, s.connections, s.bytes, s.app = last, events, connections, nbytes, app
        for kind, facility, name, first, last, messages, receivers in data.get("applications", []):
            d.applications[(kind, facility, name)] = Application(kind, facility, name, first, last, messages,
                                                                 dict(receivers))
        return d
