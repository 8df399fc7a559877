"""Schemathesis against the API's own OpenAPI document, in process (ASGI), with a bounded number of examples:
valid and invalid requests alike get a documented status, of the documented media type, and never a 500."""

# the fixtures come from api_support (conftest.py belongs to the lead): pytest sees them by name
# ruff: noqa: F811

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import content_type_conformance, not_a_server_error, status_code_conformance
from schemathesis.specs.openapi.checks import response_schema_conformance

from api_support import DemoApi, demo_api, demo_workspace  # noqa: F401

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = 12


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_conforms_to_its_openapi(demo_api: DemoApi, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", demo_api.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    tried = []
    for operation in operations:
        if mode is GenerationMode.NEGATIVE and not operation.path_parameters and not operation.query \
                and operation.body is None:
            continue  # nothing to make invalid

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=demo_api.headers("admin"), checks=CHECKS)

        try:
            run()
        except Unsatisfiable:
            if mode is GenerationMode.POSITIVE:
                raise
            continue  # no invalid request can be made of this operation's parameters
        tried.append(operation.label)
    assert len(tried) >= 10, tried


def test_every_operation_that_validates_input_documents_400(demo_api: DemoApi) -> None:
    """The API answers a request its parameters or body refuse with 400 (problems.install), so every operation that
    has any must say so (the fuzzer found a model plot's 65-character name answered with an undocumented 400)."""
    spec = demo_api.app.openapi()
    undocumented = [f"{method.upper()} {path}" for path, item in spec["paths"].items()
                    for method, operation in item.items()
                    if (operation.get("parameters") or operation.get("requestBody"))
                    and "400" not in operation["responses"]]
    assert undocumented == []
