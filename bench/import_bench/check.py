"""Compare an import report with the ground truth of the generated file.

Every feature has an expected outcome: the features of an injected defect the one the truth
lists, every other feature "accepted, no reason, no warning" (warnings the truth declares as
ignored, ``provisional_commune`` for Dialacoto, are left out on both sides). The report lists
every feature that is not plainly accepted in ``issues``; a feature it does not list is taken as
plainly accepted. So a missed defect and a reported defect that was not injected both show up
as a difference.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class CheckResult:
    """Differences between a report and the truth (empty when they agree)."""

    differences: list[str] = field(default_factory=list)
    missed: int = 0
    unexpected: int = 0
    wrong: int = 0
    incomplete: bool = False
    by_kind: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.differences

    def as_dict(self, limit: int = 50) -> dict[str, Any]:
        return {"ok": self.ok, "missed": self.missed, "unexpected": self.unexpected, "wrong": self.wrong,
                "incomplete": self.incomplete, "differences_count": len(self.differences),
                "differences": self.differences[:limit], "by_kind": self.by_kind}


def _outcome(status: str, reasons: list[str], warnings: list[str], ignored: set[str]) -> tuple:
    return status, tuple(sorted(set(reasons))), tuple(sorted(set(warnings) - ignored))


def _show(outcome: tuple) -> str:
    status, reasons, warnings = outcome
    parts = [status]
    if reasons:
        parts.append("reasons=" + ",".join(reasons))
    if warnings:
        parts.append("warnings=" + ",".join(warnings))
    return " ".join(parts)


def compare(report: dict[str, Any], truth: dict[str, Any]) -> CheckResult:
    """Check ``report`` (the ``--report`` JSON) against ``truth`` (the generator's ground truth)."""
    result = CheckResult()
    ignored = set(truth.get("ignored_warnings", []))
    plain = _outcome("accepted", [], [], ignored)
    expected: dict[int, tuple[tuple, str, int]] = {}
    for defect in truth["defects"]:
        result.by_kind.setdefault(defect["kind"], {"injected": 0, "found": 0})["injected"] += 1
        for feature in defect["features"]:
            expected[feature["feature"]] = (
                _outcome(feature["status"], feature["reasons"], feature["warnings"], ignored),
                f"{defect['kind']}#{defect['id']}/{feature['role']}", defect["id"])
    actual: dict[int, tuple] = {}
    for issue in report.get("issues") or []:
        actual[int(issue["feature"])] = _outcome(issue["status"], issue.get("reasons") or [],
                                                 issue.get("warnings") or [], ignored)
    if report.get("read") != truth["features"]:
        result.differences.append(f"read {report.get('read')} features, the file holds {truth['features']}")
    if report.get("issues_truncated"):
        result.incomplete = True
        result.differences.append(f"the report lists only {len(actual)} issues (issues_truncated): the features "
                                  "after them cannot be checked")
    want_rejected = sum(1 for outcome, _, _ in expected.values() if outcome[0] == "rejected")
    for key, want_count in (("rejected", want_rejected), ("accepted", truth["features"] - want_rejected),
                            ("duplicates", 0)):
        if report.get(key) != want_count:
            result.differences.append(f"report counts {report.get(key)} {key}, the truth {want_count}")
    defects_ok: dict[int, bool] = {}
    for feature, (want, label, defect_id) in sorted(expected.items()):
        got = actual.get(feature, plain)
        if got == want:
            defects_ok.setdefault(defect_id, True)
            continue
        defects_ok[defect_id] = False
        if result.incomplete and feature not in actual and feature > max(actual, default=-1):
            continue  # beyond the listed issues: unknown, already reported as incomplete
        if got == plain:
            result.missed += 1
            result.differences.append(f"feature {feature} ({label}): expected {_show(want)}, reported plainly accepted")
        else:
            result.wrong += 1
            result.differences.append(f"feature {feature} ({label}): expected {_show(want)}, reported {_show(got)}")
    for feature, got in sorted(actual.items()):
        if feature in expected or got == plain:
            continue
        result.unexpected += 1
        result.differences.append(f"feature {feature} (no defect injected): expected accepted, reported {_show(got)}")
    for defect in truth["defects"]:
        if defects_ok.get(defect["id"]):
            result.by_kind[defect["kind"]]["found"] += 1
    return result


def compare_rejects(rejected: dict[int, str], truth: dict[str, Any], result: CheckResult) -> None:
    """Add to ``result`` the differences between the rejects file and the truth.

    ``rejected``: feature → status (``sifc_feature``, ``sifc_status`` of the rejects GeoPackage). Every
    feature the truth expects rejected must be in it, and no other: with ``compare``, every feature's
    outcome is then checked twice, by the report and by the rejects file.
    """
    want = {f["feature"] for d in truth["defects"] for f in d["features"] if f["status"] != "accepted"}
    for feature in sorted(want - rejected.keys()):
        result.differences.append(f"feature {feature}: expected rejected, missing from the rejects file")
    for feature in sorted(rejected.keys() - want):
        result.differences.append(f"feature {feature}: in the rejects file ({rejected[feature]}), no defect injected")
