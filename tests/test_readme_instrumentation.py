"""The README's "Instrument your app" snippets, run as written: its start-up block, each
instrumentation block and the `attributed` helper, with the real SDKs pointed at local stand-ins
through their usual environment variables (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OPENAI_BASE_URL,
ANTHROPIC_BASE_URL); each call lands attributed to the route and user the snippets set."""

from __future__ import annotations

import re
import threading
from http.server import ThreadingHTTPServer

import pytest

from tests.service_support import REPO, Running, service  # noqa: F401
from tests.test_instrumentations import _ChatCompletions, _Messages


def _snippets() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("#### Instrument your app", 1)[1].split("\n### ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_the_readme_has_the_blocks_this_test_runs() -> None:
    setup, official, openinference, openllmetry, helper, usage = _snippets()
    assert "TracerProvider" in setup and "openai_v2" in official and "openinference" in openinference
    assert "AnthropicInstrumentor" in openllmetry and "def attributed" in helper and "attributed(" in usage


@pytest.mark.parametrize("which", ["official", "openinference", "openllmetry"])
def test_readme_snippets_as_written(service: Running, monkeypatch: pytest.MonkeyPatch, which: str) -> None:  # noqa: F811
    setup, official, openinference, openllmetry, helper, usage = _snippets()
    anthropic = which == "openllmetry"
    stand_in = ThreadingHTTPServer(("127.0.0.1", 0), _Messages if anthropic else _ChatCompletions)
    threading.Thread(target=stand_in.serve_forever, daemon=True).start()
    port = stand_in.server_port
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", f"{service.url}/v1/traces")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{port}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    namespace: dict = {}
    instrument = {"official": official, "openinference": openinference, "openllmetry": openllmetry}[which]
    try:
        exec(setup + "\n" + instrument + "\n" + helper, namespace)  # noqa: S102 - the README's own code
        if anthropic:
            import anthropic as sdk

            client = sdk.Anthropic()
            with namespace["attributed"](user_id="u-7", feature="answers"):
                client.messages.create(model="claude-haiku-4-5", max_tokens=100,
                                       messages=[{"role": "user", "content": "hi"}])
        else:
            import openai

            namespace["client"] = openai.OpenAI()
            exec(usage, namespace)  # noqa: S102
    finally:
        instrumentor = next(v for k, v in namespace.items() if k.endswith("Instrumentor"))
        instrumentor().uninstrument()
        namespace["provider"].shutdown()  # flushes the batch processor
        stand_in.shutdown()
    service.wait_flushed()
    rows = service.rows("SELECT provider, route, user_id, feature, cache_read_tokens > 0 FROM calls")
    cached = which != "official"  # the official instrumentation reports no cache counts (README)
    assert rows == [("anthropic" if anthropic else "openai", "/support", "u-7", "answers", cached)]
