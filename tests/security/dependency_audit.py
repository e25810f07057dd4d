"""The dependency audit: `pip-audit` over the installed dependencies (docs/security.md, "Dependency audit").

    .venv/bin/python -m tests.security.dependency_audit

pip-audit asks a vulnerability service about every installed distribution: PyPI's JSON API first, then OSV. Where
neither answers (CI reaches the package registries' download paths only), pip-audit itself would print "No known
vulnerabilities found" and exit 0 with every dependency skipped; this never passes an audit that did not happen:

- every dependency looked up, none vulnerable: exit 0;
- a known vulnerability: exit 1, with the package, version, advisory and fixed versions;
- some dependencies could not be looked up while others could: exit 1 (an audit with holes is not an audit);
- no service answered at all: exit 2, saying "DEPENDENCY AUDIT NOT PERFORMED" and why, unless
  DEPENDENCY_AUDIT_OFFLINE_OK=1, which .ci/run sets: there it is reported, loudly, and CI goes on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field

SERVICES = ("pypi", "osv")
TIMEOUT_SECONDS = 15
NOT_PERFORMED = 2


@dataclass
class Audit:
    service: str
    audited: list[str] = field(default_factory=list)  # "name==version"
    skipped: dict[str, str] = field(default_factory=dict)  # name -> why
    vulnerabilities: list[str] = field(default_factory=list)
    error: str = ""

    @property
    def performed(self) -> bool:
        return bool(self.audited)


def audit_from_report(service: str, returncode: int, stdout: str, stderr: str) -> Audit:
    """What one pip-audit run established, from its JSON report (or its failure to make one)."""
    audit = Audit(service=service)
    try:
        report = json.loads(stdout)
    except json.JSONDecodeError:
        lines = [line for line in stderr.strip().splitlines() if line.strip()]
        audit.error = lines[-1] if lines else f"pip-audit exited {returncode} with no report"
        return audit
    for dependency in report.get("dependencies", []):
        name, version = dependency["name"], dependency.get("version")
        if "skip_reason" in dependency:
            if "editable" not in dependency["skip_reason"]:  # this project itself, installed with -e
                audit.skipped[name] = dependency["skip_reason"]
            continue
        audit.audited.append(f"{name}=={version}")
        for vulnerability in dependency.get("vulns", []):
            fixed = ", ".join(vulnerability.get("fix_versions") or []) or "no fixed version yet"
            audit.vulnerabilities.append(f"{name} {version}: {vulnerability['id']} (fixed in: {fixed})")
    if not audit.audited and audit.skipped:
        audit.error = f"{service} answered for none of {len(audit.skipped)} dependencies"
    return audit


def run_pip_audit(service: str) -> Audit:
    command = [
        sys.executable,
        "-m",
        "pip_audit",
        "--vulnerability-service",
        service,
        "--skip-editable",
        "--progress-spinner",
        "off",
        "--desc",
        "off",
        "--timeout",
        str(TIMEOUT_SECONDS),
        "--format",
        "json",
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)  # noqa: S603
    except subprocess.TimeoutExpired:
        return Audit(service=service, error="pip-audit did not finish in 600 s")
    return audit_from_report(service, done.returncode, done.stdout, done.stderr)


def verdict(audits: list[Audit], *, offline_ok: bool) -> tuple[int, list[str]]:
    """(exit status, lines to print) for the audits made, the first service that answered deciding."""
    performed = next((audit for audit in audits if audit.performed), None)
    if performed is None:
        lines = ["DEPENDENCY AUDIT NOT PERFORMED: no vulnerability service answered from here."]
        lines += [f"  {audit.service}: {audit.error}" for audit in audits]
        if offline_ok:
            lines.append(
                "  DEPENDENCY_AUDIT_OFFLINE_OK=1: reported, not failed (docs/security.md, 'Dependency audit')."
            )
            return 0, lines
        return NOT_PERFORMED, lines
    lines = [f"Dependency audit ({performed.service}): {len(performed.audited)} distributions looked up."]
    status = 0
    if performed.vulnerabilities:
        status = 1
        lines.append(f"{len(performed.vulnerabilities)} known vulnerabilities:")
        lines += [f"  {line}" for line in performed.vulnerabilities]
    if performed.skipped:
        status = 1
        lines.append(f"{len(performed.skipped)} distributions could not be looked up, so the audit has holes:")
        lines += [f"  {name}: {why}" for name, why in sorted(performed.skipped.items())]
    if status == 0:
        lines.append("No known vulnerabilities.")
    return status, lines


def main() -> int:
    audits = []
    for service in SERVICES:
        audits.append(run_pip_audit(service))
        if audits[-1].performed:
            break
    status, lines = verdict(audits, offline_ok=os.environ.get("DEPENDENCY_AUDIT_OFFLINE_OK") == "1")
    print("\n".join(lines), file=sys.stderr if status else sys.stdout)
    return status


if __name__ == "__main__":
    sys.exit(main())
