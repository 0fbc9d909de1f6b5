"""promptfoo config YAML: the suite as a `tests:` list, runnable with `promptfoo eval -c FILE -r PROVIDER`.

The file is a whole promptfoo config without `providers` (pass the model under test with `-r`, or
add a `providers:` list): `description` and `tags` carry the suite version, the single prompt
`{{ messages | dump }}` replays each case's chat messages (promptfoo's documented multishot pattern:
a prompt that renders to a JSON list of `{role, content}` is sent as chat messages), and `tests`
holds one test per case:

- `description` <- the case label; `vars.messages` <- input_messages as logged; `vars.reference`
  <- expected_output when there is one.
- `assert` <- the case's grading checks, mapped to promptfoo assertion types:
  `non_empty` -> `regex` `\\S` (at least one non-blank character);
  `finish_reason` {not: X or [X, ...]} -> one `not-finish-reason` per X; {in: [X, ...]} ->
  `finish-reason` X (several: an `assert-set` of them that passes when one does);
  `json_schema` {schema} -> `is-json` with the schema as `value`;
  `latency` {max_ms} -> `latency` with `threshold` max_ms (promptfoo needs `--no-cache` for it);
  `exact` {expected} -> `equals`, or `javascript` comparing `String(output).trim()` (and lower
  case) when the check strips or ignores case, as it does by default;
  `contains` {value} -> `contains` / `contains-all` (`icontains...` when it ignores case);
  `not_known_bad` {output, max_similarity} -> a `python` assertion computing the same similarity as
  eval-loop's grader (`case_grading.known_bad_similarity`: difflib ratio over NFKC, case-folded word
  tokens; Python's standard library only), failing at or above max_similarity (the grader also
  compares a redacted copy of the text when the known bad answer holds a placeholder such as
  `<PHONE>`; the exported assertion has no redactor and compares the text as it is);
  `rubric` {rubric, reference?, min_score?} -> `llm-rubric` with the rubric as `value` (the
  reference answer, in `vars.reference`, appended through `{{ reference }}`; `min_score` as
  `threshold`). A rule whose `pass` is `any` becomes one `assert-set` passing when one check does.
  Text that holds Nunjucks markers (`{{`, `{%`, `{#`) is wrapped in `{% raw %}` so it stays literal.
- `metadata` <- case id, app, label, weight, grading checks, provenance and suite version (promptfoo
  keeps it with each result and can filter on it with `--filter-metadata`).

Not mapped (kept only in metadata): `no_error` (promptfoo already reports a provider error as an
error, not a pass), the case weight (promptfoo weights assertions, not tests), and any check type
not listed above (named in `metadata.unmapped_checks`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from loop_assets.case_rule import KNOWN_BAD_MAX_SIMILARITY
from loop_assets.evaluate.answer_checks import MAX_COMPARED_WORDS
from loop_assets.exports.suite import Case, SuiteVersion, read_case

SUFFIX = ".promptfoo.yaml"
PROMPT = "{{ messages | dump }}"
NUNJUCKS_MARKERS = ("{{", "{%", "{#")


class _Dumper(yaml.SafeDumper):
    """Safe YAML without anchors: a schema shared by an assertion and the metadata is written twice."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _text(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    """Multi-line text as a `|` block (PyYAML falls back to quoting where a block cannot hold it)."""
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None)


_Dumper.add_representer(str, _text)


def _literal(text: str) -> str:
    """Text that promptfoo's Nunjucks templating leaves as it is."""
    if any(marker in text for marker in NUNJUCKS_MARKERS):
        return "{% raw %}" + text + "{% endraw %}"
    return text


def _as_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value] if isinstance(value, list) else []


def _any_of(asserts: list[dict[str, Any]]) -> dict[str, Any]:
    """An assert-set that passes when at least one of `asserts` passes (threshold: share that must pass)."""
    return {"type": "assert-set", "threshold": round(1 / len(asserts), 6), "assert": asserts}


def _exact(check: dict[str, Any]) -> list[dict[str, Any]] | None:
    expected = check.get("expected", check.get("value"))
    if not isinstance(expected, str):
        return None
    strip, ignore_case = check.get("strip", True), check.get("ignore_case", False)
    if not strip and not ignore_case:
        return [{"type": "equals", "value": _literal(expected)}]
    lower = ".toLowerCase()" if ignore_case else ""
    got = f"String(output){'.trim()' if strip else ''}{lower}"
    want = f"{json.dumps(expected.strip() if strip else expected, ensure_ascii=False)}{lower}"
    return [{"type": "javascript", "value": _literal(f"{got} === {want}")}]


def _contains(check: dict[str, Any]) -> list[dict[str, Any]] | None:
    target = check.get("value", check.get("expected"))
    prefix = "i" if check.get("ignore_case", False) else ""
    if isinstance(target, str):
        return [{"type": f"{prefix}contains", "value": _literal(target)}]
    values = _as_list(target)
    return [{"type": f"{prefix}contains-all", "value": [_literal(v) for v in values]}] if values else None


# The body of a promptfoo `python` assertion (promptfoo runs a multi-line value as a function of
# `output` and `context`): case_grading.known_bad_similarity, written out with the standard library only.
KNOWN_BAD_PYTHON = """import difflib, re, unicodedata
known_bad = {known_bad}
limit = {limit}
def words(text):
    return re.findall(r"\\w+", unicodedata.normalize("NFKC", text).casefold())
def folded(text):
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())
text = "" if output is None else str(output)
if not text.strip():
    return {{"pass": True, "score": 1, "reason": "blank output is not the known bad answer"}}
a, b = words(text), words(known_bad)
if a == b:
    similarity = 1.0 if a or folded(text) == folded(known_bad) else 0.0
elif not a or not b:
    similarity = 0.0
else:
    similarity = difflib.SequenceMatcher(None, a[:{max_words}], b[:{max_words}], autojunk=False).ratio()
shown = "similarity %.3f, limit %g" % (similarity, limit)
if similarity >= limit:
    return {{"pass": False, "score": 0, "reason": "the known bad answer came back (" + shown + ")"}}
return {{"pass": True, "score": 1, "reason": "not the known bad answer (" + shown + ")"}}
"""


def _not_known_bad(check: dict[str, Any]) -> list[dict[str, Any]] | None:
    known_bad = check.get("output")
    if not isinstance(known_bad, str) or not known_bad.strip():
        return None
    limit = float(check.get("max_similarity", KNOWN_BAD_MAX_SIMILARITY))
    # A JSON string is a Python string literal; braces escaped so the code holds no Nunjucks marker.
    literal = json.dumps(known_bad, ensure_ascii=True).replace("{", "\\u007b").replace("}", "\\u007d")
    code = KNOWN_BAD_PYTHON.format(known_bad=literal, limit=repr(limit), max_words=MAX_COMPARED_WORDS)
    assert not any(marker in code for marker in NUNJUCKS_MARKERS)
    return [{"type": "python", "value": code}]


def assertions(check: dict[str, Any], variables: dict[str, Any]) -> list[dict[str, Any]] | None:
    """The promptfoo assertions for one grading check, or None when promptfoo has no natural one.

    A rubric's reference answer is put in `variables` (as `reference`), which the rubric refers to.
    """
    kind = check.get("type")
    if kind == "non_empty":
        return [{"type": "regex", "value": "\\S"}]
    if kind == "finish_reason" and check.get("not") is not None:
        return [{"type": "not-finish-reason", "value": v} for v in _as_list(check["not"])] or None
    if kind == "finish_reason" and check.get("in") is not None:
        allowed = [{"type": "finish-reason", "value": v} for v in _as_list(check["in"])]
        return (allowed if len(allowed) == 1 else [_any_of(allowed)]) if allowed else None
    if kind == "json_schema" and isinstance(check.get("schema"), dict):
        return [{"type": "is-json", "value": check["schema"]}]
    if kind == "latency" and check.get("max_ms") is not None:
        return [{"type": "latency", "threshold": float(check["max_ms"])}]
    if kind == "exact":
        return _exact(check)
    if kind == "contains":
        return _contains(check)
    if kind == "not_known_bad":
        return _not_known_bad(check)
    if kind == "rubric" and check.get("rubric"):
        rubric: dict[str, Any] = {"type": "llm-rubric", "value": _literal(str(check["rubric"]))}
        if check.get("reference") is not None:
            variables["reference"] = str(check["reference"])
            rubric["value"] += "\n\nA reference answer (the user's correction of the failing answer): {{ reference }}"
        if check.get("min_score") is not None:
            rubric["threshold"] = float(check["min_score"])
        return [rubric]
    return None


def promptfoo_test(case: Case, version: SuiteVersion) -> dict[str, Any]:
    variables: dict[str, Any] = {"messages": case.messages}
    if case.expected_output is not None:
        variables["reference"] = case.expected_output
    asserts, unmapped = [], []
    for check in case.checks:
        mapped = assertions(check, variables)
        if mapped is not None:
            asserts.extend(mapped)
        elif check.get("type") != "no_error":
            unmapped.append(check.get("type"))
    metadata = case.metadata(version)
    if case.grading.get("pass", "all") == "any" and len(asserts) > 1:
        asserts = [_any_of(asserts)]
    if unmapped:
        metadata["unmapped_checks"] = unmapped
    return {
        "description": case.label or case.case_id,
        "vars": variables,
        "assert": asserts,
        "metadata": metadata,
    }


def config(cases: list[Case], version: SuiteVersion) -> dict[str, Any]:
    as_of = version.as_of.isoformat() if version.as_of else "empty"
    return {
        "description": f"eval-loop regression suite as of {as_of} ({version.cases} cases)",
        "tags": {
            "source": "eval-loop",
            "suite_as_of": as_of,
            "suite_cases": str(version.cases),
            "suite_case_ids_sha256": version.digest,
        },
        "prompts": [PROMPT],
        "tests": [promptfoo_test(case, version) for case in cases],
    }


def write(cases: list[Case], version: SuiteVersion, path: Path, **_: Any) -> None:
    as_of = version.as_of.isoformat() if version.as_of else "empty"
    header = (
        f"# eval-loop regression suite as of {as_of}: {version.cases} cases"
        f" (case ids sha256 {version.digest[:16]}, {'pinned' if version.pinned else 'latest'}).\n"
        "# Run: promptfoo eval -c THIS_FILE -r <provider> --no-cache   (--no-cache: latency assertions need it)\n"
        "# Each test's metadata holds the case's provenance: trace, source file and line, signals, cluster.\n"
    )
    body = yaml.dump(config(cases, version), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120)
    path.write_text(header + body, encoding="utf-8")


def read(path: Path) -> list[dict[str, Any]]:
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    out = []
    for test in document.get("tests") or []:
        variables = test.get("vars") or {}
        out.append(
            read_case(
                test, test.get("metadata") or {}, input=variables.get("messages"), expected=variables.get("reference")
            )
        )
    return out
