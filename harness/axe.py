"""axe-core in the page: the WCAG 2.1 AA rules a browser test checks the app's content against.

axe-core is pinned in package-lock.json and installed by ``make axe`` (part of ``make test``);
nothing is fetched at test time. A check fails on any violation of impact critical, serious or
moderate, and lists each with the elements it found, so a failure says what to fix.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page

from . import ROOT

AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
FAILING_IMPACTS = ("critical", "serious", "moderate")
WCAG_AA_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]

# Streamlit keeps a portal for toasts and pop-overs outside its landmarks, where axe's "all content in
# landmarks" rule (a best practice, not a WCAG criterion) finds it even while it is empty: that rule
# alone leaves it out; every other rule checks what the portal shows.
PORTAL = "#stFloatingOverlayPortal"

RUN_AXE_JS = """async ([tags, portal]) => {
  const only = (runOnly) => ({runOnly, resultTypes: ['violations']});
  const results = await axe.run(document, {...only({type: 'tag', values: tags}), rules: {region: {enabled: false}}});
  const regions = await axe.run({exclude: [[portal]]}, only({type: 'rule', values: ['region']}));
  return results.violations.concat(regions.violations).map(v => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map(n => ({target: n.target.join(' '), summary: n.failureSummary, html: n.html.slice(0, 160)})),
  }));
}"""


def require_axe() -> Path:
    """Fail (never skip) when axe-core is missing, as for the browser itself."""
    if not AXE.is_file():
        pytest.fail(f"{AXE} not found: the accessibility checks run axe-core. Install it with `make axe` "
                    "(npm ci; the version and hash are pinned in package-lock.json).", pytrace=False)
    return AXE


def violations(page: Page) -> list[dict]:
    """Every violation of impact critical, serious or moderate in the page as it is now."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(require_axe()))
    found = page.evaluate(RUN_AXE_JS, [WCAG_AA_TAGS, PORTAL])
    return [v for v in found if v["impact"] in FAILING_IMPACTS]


def describe(found: list[dict]) -> str:
    lines = []
    for v in found:
        lines.append(f"{v['impact']} {v['id']}: {v['help']}")
        lines += [f"    {n['target']}  {n['html']}\n      {n['summary']}" for n in v["nodes"][:6]]
        if len(v["nodes"]) > 6:
            lines.append(f"    ... and {len(v['nodes']) - 6} more")
    return "\n".join(lines)


def expect_accessible(page: Page, state: str) -> None:
    """Assert that axe finds nothing of impact moderate or worse in ``state`` (named in the failure)."""
    found = violations(page)
    assert not found, f"axe-core found accessibility violations on {state}:\n{describe(found)}"
