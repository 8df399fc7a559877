"""Benchmark of sharing: export + sanitise + leak check + sign of a large bundle, and TAXII GET/POST.

    python bench/share.py [--quick]

Full: a 10,000-object bundle (alerts with ATT&CK sightings and observables, findings, indicators; every
alert's text carries patient ids, host and user names that the sanitiser must replace), built by the fast
builder and, as the baseline in the same run, through the `stix2` package with `rfc8785` canonicalisation
(the reference path); then a TAXII collection of 1,000,000 objects in the store, filled through the
storage layer, and 100-object pages fetched over real HTTP (httpx → uvicorn on 127.0.0.1): p50/p99 of
first pages, random `next` pages, `added_after` and `match[type]` queries, plus POST throughput over HTTP.
Private matching: PSI (openmined-psi) against a keyed Bloom filter for 10k x 10k and 100k x 100k
indicators (half shared): time and bytes exchanged.
--quick: 2,000 objects, a 20,000-object collection, PSI 2k x 2k.
"""

from __future__ import annotations

import argparse
import random
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from common import peak_rss_mib, report, timed
from healthswarm.model import Alert, Asset, AttackRef, EventRef, Finding, FindingStatus, Indicator
from healthswarm.share.canonical import canonical
from healthswarm.share.leakcheck import LeakChecker
from healthswarm.share.sanitise import Sanitiser, policy_for
from healthswarm.share.secrets import Pseudonymiser
from healthswarm.share.sensitive import Sensitive
from healthswarm.share.signing import KeyPair, sign_bundle
from healthswarm.share.stix_export import ExportContext, build_bundle, reference_bundle

NOW = datetime(2026, 11, 29, 4, 0, tzinfo=UTC)
TECHNIQUES = ["T1021.002", "T1059.001", "T1078", "T1566.001", "T1486", "T1071.001", "T1105", "T1047"]


def workload(objects: int, rng: random.Random) -> tuple[dict[str, Any], Sensitive]:
    """Records that build to about `objects` STIX objects, and the organisation's sensitive values."""
    known = Sensitive()
    for i in range(2000):
        known.add_host(f"ws-icu-{i:04d}.sta.example")
        known.users.add(f"nurse.{i:04d}")
        known.patients.add(f"PAT-{100000 + i}")
        known.addresses.add(f"10.20.{i // 250}.{i % 250}")
    n_alerts = objects // 5
    alerts = []
    for i in range(n_alerts):
        host, user, patient = rng.randrange(2000), rng.randrange(2000), rng.randrange(2000)
        alerts.append(Alert(
            "sigma", f"rule-{i % 40}", f"Suspicious activity on ws-icu-{host:04d}", "high", NOW - timedelta(minutes=i),
            events=(EventRef("/var/log/x", i, f"k{i}"),), techniques=(AttackRef(rng.choice(TECHNIQUES)),),
            description=f"nurse.{user:04d} opened PAT-{100000 + patient} on ws-icu-{host:04d}.sta.example "
                        f"(10.20.{host // 250}.{host % 250}) then C:\\Users\\nurse.{user:04d}\\x.exe called "
                        f"198.51.{i % 250}.{(i * 7) % 250}",
            details={"source.ip": f"10.20.{host // 250}.{host % 250}", "destination.ip": f"198.51.{i % 250}.{i % 200}",
                     "file.hash.sha256": f"{i:064x}"}))
    assets = {f"a{i}": Asset(f"a{i}", "o", "z", "infusion-pump", "p", vendor="BD", product=f"Alaris {i % 30}",
                             version="9") for i in range(100)}
    findings = [Finding(f"a{i % 100}", f"ICSMA-{i}", f"CVE-2024-{10000 + i}", FindingStatus.AFFECTED, 7.5,
                        "CVSS:3.1/AV:N", "3.1", "high", remediation=f"Update to {i}.1")
                for i in range(objects // 20)]
    indicators = [Indicator(f"203.0.{i // 250 % 250}.{i % 250}", "ipv4", NOW, NOW, techniques=(rng.choice(TECHNIQUES),))
                  for i in range(objects // 10)]
    return {"alerts": alerts, "findings": findings, "assets": assets, "indicators": indicators}, known


class Prepared:
    """What an agent prepares once and reuses for every export: keys, sanitiser rules, leak-check automata."""

    def __init__(self, known: Sensitive) -> None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        self.pseudo = Pseudonymiser(b"k" * 32)
        self.keys = KeyPair(Ed25519PrivateKey.generate())
        self.sanitiser = Sanitiser(policy_for("amber", "sector"), known, self.pseudo)
        self.checker = LeakChecker(known)


def pipeline(records: dict[str, Any], prepared: Prepared, reference: bool) -> dict[str, Any]:
    """export → sanitise → leak check → sign; `reference`: objects built by `stix2`, signed over `rfc8785`."""
    ctx = ExportContext("healthswarm-org-bench", prepared.pseudo.derive("stix-ids"), tlp="amber", now=NOW)
    bundle, _ = build_bundle(ctx, **records)
    if reference:
        bundle = reference_bundle(bundle)  # every object constructed and serialised by `stix2`
    clean = prepared.sanitiser.bundle(bundle)
    hits = prepared.checker.check(clean)
    if hits:
        raise SystemExit(f"leak check found {len(hits)} values in the benchmark bundle: {hits[:3]}")
    if reference:
        import rfc8785

        import healthswarm.share.signing as signing

        original = signing.canonical
        signing.canonical = rfc8785.dumps
        try:
            return sign_bundle(clean, prepared.keys, "identity--x", now=NOW)
        finally:
            signing.canonical = original
    return sign_bundle(clean, prepared.keys, "identity--x", now=NOW)


def bundle_bench(objects: int, quick: bool) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    rng = random.Random(42)
    records, known = workload(objects, rng)
    prepared, setup_s = timed(lambda: Prepared(known))
    pipeline(records, prepared, False)  # warm up (regex combinations, caches) as a running agent would be
    fast_times, ref_times = [], []
    fast: dict[str, Any] = {}
    for _ in range(7):
        fast, seconds = timed(lambda: pipeline(records, prepared, False))
        fast_times.append(seconds)
    for _ in range(3):
        _ref, seconds = timed(lambda: pipeline(records, prepared, True))
        ref_times.append(seconds)
    n = len(fast["objects"])
    # the machine is shared (see load_average_1min): the best run is what the code can do, the median what
    # it did among the neighbours; both are kept, the ratio uses best against best
    fast_s, ref_s = min(fast_times), min(ref_times)
    fast_median, ref_median = statistics.median(fast_times), statistics.median(ref_times)
    # the parts, for the record
    ctx = ExportContext("healthswarm-org-bench", prepared.pseudo.derive("stix-ids"), tlp="amber", now=NOW)
    raw, build_s = timed(lambda: build_bundle(ctx, **records)[0])
    clean, sanitise_s = timed(lambda: prepared.sanitiser.bundle(raw))
    _hits, check_s = timed(lambda: prepared.checker.check(clean))
    _c, canon_s = timed(lambda: canonical(clean))
    _r, stix2_s = timed(lambda: reference_bundle(raw))
    # validator on a sample (it checks ~440 objects/s): the fast path's output is what the tests validate whole
    from stix2validator import ValidationOptions, validate_parsed_json

    sample = {"type": "bundle", "id": fast["id"], "objects": fast["objects"][: 300 if quick else 1000]}
    result = validate_parsed_json(sample, ValidationOptions())
    errors = sum(len(r.errors) for r in (result if isinstance(result, list) else [result]))
    figures = {
        "objects": n, "known_sensitive_values": sum(1 for _ in known.values()),
        "setup_seconds": round(setup_s, 3), "runs": {"fast": [round(t, 4) for t in fast_times],
                                                     "baseline": [round(t, 4) for t in ref_times]},
        "fast_seconds": round(fast_s, 4), "fast_objects_per_s": round(n / fast_s),
        "fast_median_seconds": round(fast_median, 4), "fast_median_objects_per_s": round(n / fast_median),
        "baseline_median_seconds": round(ref_median, 4),
        "baseline_stix2_seconds": round(ref_s, 4), "baseline_objects_per_s": round(n / ref_s),
        "speedup_vs_stix2": round(ref_s / fast_s, 2), "target_objects_per_s": 20000,
        "target_met": n / fast_s >= 20000,
        "parts_seconds": {"build": round(build_s, 4), "sanitise": round(sanitise_s, 4),
                          "leak_check": round(check_s, 4),
                          "canonicalise_rfc8785": round(canon_s, 4), "stix2_build_only": round(stix2_s, 4)},
        "validator_sample_objects": len(sample["objects"]), "validator_errors": errors,
    }
    rows = [
        ("bundle objects", f"{n:,} ({sum(1 for _ in known.values()):,} sensitive values known)"),
        ("setup once: keys, sanitiser, leak-check automata", f"{setup_s:.2f} s"),
        ("export+sanitise+leak-check+sign (best of 7)", f"{fast_s:.3f} s = {n / fast_s:,.0f} objects/s"),
        ("  median of 7 (shared machine)", f"{fast_median:.3f} s = {n / fast_median:,.0f} objects/s"),
        ("baseline: stix2 + rfc8785 path (best of 3)", f"{ref_s:.3f} s = {n / ref_s:,.0f} objects/s"),
        ("speed-up", f"{ref_s / fast_s:.1f}x (target >= 20,000 objects/s: "
                     f"{'met' if n / fast_s >= 20000 else 'NOT met'})"),
        ("  build / sanitise / leak check / canonicalise",
         f"{build_s:.3f} / {sanitise_s:.3f} / {check_s:.3f} / {canon_s:.3f} s"),
        ("validator errors on sample", f"{errors} in {len(sample['objects'])} objects"),
    ]
    return figures, rows


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _indicator(i: int) -> dict[str, Any]:
    return {"type": "indicator", "spec_version": "2.1", "id": f"indicator--{uuid.UUID(int=i + 1, version=4)}",
            "created": "2026-01-01T00:00:00.000Z", "modified": "2026-01-01T00:00:00.000Z",
            "name": f"bench {i}", "pattern": f"[ipv4-addr:value = '198.51.{i // 250 % 250}.{i % 250}']",
            "pattern_type": "stix", "valid_from": "2026-01-01T00:00:00Z"}


def taxii_bench(collection_size: int, quick: bool) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    import httpx
    import uvicorn
    from sqlalchemy import create_engine, event, select

    from healthswarm.share.taxii import storage
    from healthswarm.share.taxii.server import make_app
    from healthswarm.store.taxii_tables import taxii_objects

    folder = Path(tempfile.mkdtemp(prefix="bench-taxii-"))
    engine = create_engine(f"sqlite:///{folder / 'taxii.db'}")

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi: Any, _record: Any) -> None:
        cursor = dbapi.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    app = make_app(engine)
    with engine.begin() as conn:
        col = storage.create_collection(conn, "api1", "bench")
        token = storage.create_token(conn, "bench", "admin")
    chunk = 10_000

    def fill() -> None:
        for start in range(0, collection_size, chunk):
            with engine.begin() as conn:
                end = min(collection_size, start + chunk)
                storage.add_objects(conn, col, [_indicator(i) for i in range(start, end)])

    _none, fill_s = timed(fill)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/taxii+json;version=2.1"}
    url = f"http://127.0.0.1:{port}/api1/collections/{col}/objects/"
    rng = random.Random(1)
    samples: dict[str, list[float]] = {"first page": [], "random next page": [], "added_after": [], "match[type]": []}
    requests = 100 if quick else 300
    with httpx.Client(headers=headers, timeout=60) as client:
        # the instant the first storage chunk was added: what follows is the rest of the collection
        after = client.get(url, params={"limit": "1"}).headers["X-TAXII-Date-Added-First"]
        # cursors into the whole collection, as clients paging through it would hold them
        with engine.connect() as conn:
            step = max(1, collection_size // 500)
            cursors = [storage.encode_next(r) for r in conn.execute(
                select(taxii_objects.c.pk, taxii_objects.c.date_added).where(
                    (taxii_objects.c.pk % step) == 0, taxii_objects.c.pk < collection_size - 200))]
        for kind in samples:
            for _ in range(requests):
                params = {"limit": "100"}
                if kind == "random next page":
                    params["next"] = cursors[rng.randrange(len(cursors))]
                elif kind == "added_after":
                    params["added_after"] = after
                elif kind == "match[type]":
                    params["match[type]"] = "indicator"
                start = time.perf_counter()
                response = client.get(url, params=params)
                samples[kind].append(time.perf_counter() - start)
                if response.status_code != 200 or len(response.json().get("objects", [])) != 100:
                    raise SystemExit(f"TAXII GET {params}: HTTP {response.status_code}")
        # POST over HTTP: 1000-object envelopes
        post_objects = 5000 if quick else 20000
        body_objects = [_indicator(collection_size + i) for i in range(post_objects)]

        def post_all() -> None:
            for start in range(0, post_objects, 1000):
                r = client.post(url, json={"objects": body_objects[start:start + 1000]},
                                headers={"Content-Type": "application/taxii+json;version=2.1"})
                if r.status_code != 202 or r.json()["success_count"] != 1000:
                    raise SystemExit(f"TAXII POST: HTTP {r.status_code} {r.text[:200]}")

        _none, post_s = timed(post_all)
    server.should_exit = True
    thread.join(timeout=10)
    engine.dispose()

    def pct(values: list[float], p: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] * 1000

    figures: dict[str, Any] = {"collection_objects": collection_size, "fill_seconds": round(fill_s, 2),
                               "fill_objects_per_s": round(collection_size / fill_s),
                               "post_http_objects_per_s": round(post_objects / post_s), "page_size": 100,
                               "requests_per_query": requests, "target_p99_ms": 50}
    rows = [("TAXII collection", f"{collection_size:,} objects, filled at {collection_size / fill_s:,.0f}/s (storage)"),
            ("TAXII POST over HTTP", f"{post_objects / post_s:,.0f} objects/s (1,000-object envelopes)")]
    worst = 0.0
    for kind, values in samples.items():
        p50, p99 = pct(values, 50), pct(values, 99)
        worst = max(worst, p99)
        figures[f"get_{kind.replace(' ', '_').replace('[', '_').replace(']', '')}_ms"] = {
            "p50": round(p50, 2), "p99": round(p99, 2), "mean": round(statistics.mean(values) * 1000, 2)}
        rows.append((f"GET 100 objects, {kind}", f"p50 {p50:.1f} ms, p99 {p99:.1f} ms"))
    figures["target_met"] = worst <= 50
    rows.append(("GET p99 target <= 50 ms", "met" if worst <= 50 else f"NOT met (worst p99 {worst:.1f} ms)"))
    return figures, rows


def psi_bench(sizes: list[int]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """PSI (openmined-psi, intersection revealed) against a keyed Bloom filter, n x n items, half shared."""
    from healthswarm.share.psi import PsiClient, bloom_filter, bloom_matches, psi_answer

    figures: dict[str, Any] = {}
    rows: list[tuple[str, str]] = []
    key = b"k" * 32
    for n in sizes:
        mine = [f"ipv4:10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(n)]
        theirs = [f"ipv4:10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}" for i in range(n // 2, n // 2 + n)]

        def run_psi(mine: list[str] = mine, theirs: list[str] = theirs) -> tuple[int, int]:
            client = PsiClient(mine)
            request = client.request()
            setup, response = psi_answer(theirs, request, len(mine))
            found = client.result(setup, response)
            return len(found) if isinstance(found, list) else found, len(request) + len(setup) + len(response)

        (psi_found, psi_bytes), psi_s = timed(run_psi)

        def run_bloom(mine: list[str] = mine, theirs: list[str] = theirs) -> tuple[int, int]:
            published = bloom_filter(theirs, key, fpr=1e-9)
            return len(bloom_matches(published, key, mine)), len(published)

        (bloom_found, bloom_bytes), bloom_s = timed(run_bloom)
        figures[f"{n}x{n}"] = {"psi_seconds": round(psi_s, 2), "psi_bytes": psi_bytes, "psi_found": psi_found,
                               "bloom_seconds": round(bloom_s, 3), "bloom_bytes": bloom_bytes,
                               "bloom_found": bloom_found, "true_intersection": n - n // 2}
        rows.append((f"PSI {n:,} x {n:,}", f"{psi_s:.2f} s, {psi_bytes / 1e6:.2f} MB exchanged, {psi_found:,} found"))
        rows.append((f"keyed Bloom {n:,} x {n:,}",
                     f"{bloom_s:.2f} s, {bloom_bytes / 1e6:.2f} MB filter, {bloom_found:,} found"))
    return figures, rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000-object bundle, 20,000-object collection")
    args = parser.parse_args()
    objects = 2000 if args.quick else 10_000
    collection = 20_000 if args.quick else 1_000_000
    bundle_figures, bundle_rows = bundle_bench(objects, args.quick)
    taxii_figures, taxii_rows = taxii_bench(collection, args.quick)
    psi_figures, psi_rows = psi_bench([2000] if args.quick else [10_000, 100_000])
    import os

    figures = {"bundle": bundle_figures, "taxii": taxii_figures, "private_matching": psi_figures,
               "peak_rss_mib": round(peak_rss_mib(), 1),
               # the machine is shared: the 1-minute load average at the end says how much
               "load_average_1min": round(os.getloadavg()[0], 2),
               "baseline": "the same pipeline building every object through the stix2 package and signing over "
                           "rfc8785 (the reference implementations)",
               "anchors": {"stix2_indicators_per_s": 2000, "stix2_validator_objects_per_s": 440,
                           "medallion_get_100_of_2000_s": 14}}
    report("share", figures, [*bundle_rows, *taxii_rows, *psi_rows, ("peak RSS", f"{peak_rss_mib():.0f} MiB"),
                              ("load average (1 min, shared machine)", f"{os.getloadavg()[0]:.2f}")], args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
