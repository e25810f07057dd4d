"""The dependency audit's verdicts (tests/security/dependency_audit.py), from pip-audit's own JSON reports: it
never passes an audit that did not happen. The run itself is .ci/run's step (it needs a vulnerability service)."""

import json

from tests.security.dependency_audit import NOT_PERFORMED, audit_from_report, verdict

PROJECT = {"name": "async-checkout", "version": "0.1.0", "skip_reason": "distribution marked as editable"}


def _report(*dependencies) -> str:
    return json.dumps({"dependencies": [PROJECT, *dependencies], "fixes": []})


def _looked_up(name, version, *vulns):
    return {"name": name, "version": version, "vulns": list(vulns)}


def _not_found(name, version):
    return {"name": name, "skip_reason": f"Dependency not found on PyPI and could not be audited: {name} ({version})"}


def test_a_clean_audit_passes():
    audit = audit_from_report("pypi", 0, _report(_looked_up("django", "5.2.19"), _looked_up("rq", "2.12.0")), "")
    assert verdict([audit], offline_ok=False) == (
        0,
        ["Dependency audit (pypi): 2 distributions looked up.", "No known vulnerabilities."],
    )


def test_a_known_vulnerability_fails_naming_the_advisory_and_the_fix():
    vuln = {"id": "PYSEC-2099-1", "fix_versions": ["5.2.20"], "aliases": ["CVE-2099-1"]}
    audit = audit_from_report("pypi", 1, _report(_looked_up("django", "5.2.19", vuln)), "")
    status, lines = verdict([audit], offline_ok=True)
    assert status == 1
    assert "  django 5.2.19: PYSEC-2099-1 (fixed in: 5.2.20)" in lines


def test_every_dependency_skipped_is_no_audit_at_all_not_a_pass():
    # what pip-audit answers when PyPI's JSON API is not reachable: exit 0, "No known vulnerabilities found"
    pypi = audit_from_report("pypi", 0, _report(_not_found("django", "5.2.19"), _not_found("rq", "2.12.0")), "")
    osv = audit_from_report("osv", 1, "", "requests.exceptions.ConnectionError: Failed to resolve 'api.osv.dev'\n")
    status, lines = verdict([pypi, osv], offline_ok=False)
    assert status == NOT_PERFORMED
    assert lines[0].startswith("DEPENDENCY AUDIT NOT PERFORMED")
    assert "  pypi: pypi answered for none of 2 dependencies" in lines
    assert "  osv: requests.exceptions.ConnectionError: Failed to resolve 'api.osv.dev'" in lines


def test_offline_is_reported_but_tolerated_only_when_the_caller_says_so():
    osv = audit_from_report("osv", 1, "", "ConnectionError\n")
    status, lines = verdict([osv], offline_ok=True)
    assert status == 0 and lines[0].startswith("DEPENDENCY AUDIT NOT PERFORMED")


def test_an_audit_with_holes_fails():
    report = _report(_looked_up("django", "5.2.19"), _not_found("rq", "2.12.0"))
    status, lines = verdict([audit_from_report("pypi", 0, report, "")], offline_ok=True)
    assert status == 1
    assert "  rq: Dependency not found on PyPI and could not be audited: rq (2.12.0)" in lines
