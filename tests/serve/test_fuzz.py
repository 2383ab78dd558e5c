"""schemathesis makes requests from the served OpenAPI schema, valid and invalid ones, for every operation: none
may get a 5xx. A bounded number of examples per operation keeps it to seconds. (schemathesis' own pytest plugin
does not load under this pytest, so the operations' strategies are driven with hypothesis directly.)"""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from genloom.serve.app import create_app
from genloom.serve.catalogue import RunCatalogue
from genloom.serve.settings import ServeSettings

EXAMPLES_PER_OPERATION = 15


@pytest.fixture(scope="module")
def api_schema(served):
    # small limits, so that what the fuzzer asks for stays cheap to make
    app = create_app(RunCatalogue([served]), ServeSettings(max_samples=8, max_tokens=16, timeout_seconds=30))
    return schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_no_request_gets_a_server_error(api_schema, mode):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert {"/v1/runs/{name}/samples", "/v1/completions", "/v1/chat/completions"} <= {op.path for op in operations}
    seen = []
    for operation in operations:
        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def call(case):
            response = case.call()
            seen.append(response.status_code)
            assert response.status_code < 500, (case.method, case.formatted_path, case.body, response.text)

        try:
            call()
        except Unsatisfiable:  # a GET takes no body, and any string is a run name: nothing invalid to send
            assert mode == GenerationMode.NEGATIVE and operation.method == "get"
    assert len(seen) >= sum(operation.method == "post" for operation in operations) * 5
